"""point transactions (Mongo ``pointtransactions``) -> ``point_transactions``.

Document shape::

    {_id, user: ObjectId(users), amount: int | double, type, reason?, referenceId?: str,
     createdAt}

Signed point movements (``spend`` and some ``adjustment`` rows are negative). ``amount``
was a double in the first version of PointsService (``-50.0``); integral doubles load, a
fractional amount is quarantined (not_integral). ``referenceId`` is opaque text (an order
number, a referral code, an ObjectId in hex): it is not a foreign key. Moves with
``REPO_POINTS``.
"""

from migration_assets.specs.columns import id_column, legacy_column
from migration_assets.specs.enums import POINT_TRANSACTION_TYPE
from migration_assets.specs.kinds import INT, TEXT, TIMESTAMP, Ref
from migration_assets.specs.model import Column, LoaderSpec, TableSpec

POINT_TRANSACTIONS = TableSpec(
    table="point_transactions",
    description="Loyalty point movements per user.",
    columns=(
        id_column("point_transactions"),
        legacy_column(),
        Column("user_id", Ref("users"), "user", required=True),
        Column("amount", INT, "amount", required=True),
        Column("type", POINT_TRANSACTION_TYPE, "type", required=True),
        Column("reason", TEXT, "reason"),
        Column("reference_id", TEXT, "referenceId"),
        Column("created_at", TIMESTAMP, "createdAt", required=True),
    ),
)

LOADER = LoaderSpec(
    name="point_transactions",
    collection="pointtransactions",
    domain="points_wallet",
    tables=(POINT_TRANSACTIONS,),
    flags=("REPO_POINTS",),
)
