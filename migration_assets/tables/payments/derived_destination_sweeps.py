"""sweeps of derived destinations (Mongo ``deriveddestinationsweeps``) -> ``derived_destination_sweeps``.

Document shape::

    {_id, destination: ObjectId(deriveddestinations), amount: Decimal128, currency,
     txHash?, status?, sweptAt?, createdAt}

A sweep moves a destination's balance to the hot wallet; ``txHash`` and ``sweptAt`` are
absent until it is broadcast / confirmed, ``status`` is absent on the first sweeps (->
``pending``). ``amount > 0`` (0013). A sweep of a destination that is not in PostgreSQL is
quarantined. Moves with ``REPO_DERIVED_DESTINATION``.
"""

from migration_assets.specs.columns import id_column, legacy_column
from migration_assets.specs.enums import CURRENCY, SWEEP_STATUS
from migration_assets.specs.kinds import MONEY, TEXT, TIMESTAMP, Ref
from migration_assets.specs.model import Column, LoaderSpec, TableSpec

DERIVED_DESTINATION_SWEEPS = TableSpec(
    table="derived_destination_sweeps",
    description="Sweeps of derived destinations into the platform wallet.",
    columns=(
        id_column("derived_destination_sweeps"),
        legacy_column(),
        Column("destination_id", Ref("derived_destinations"), "destination", required=True),
        Column("amount", MONEY, "amount", required=True),
        Column("currency", CURRENCY, "currency", required=True),
        Column("tx_hash", TEXT, "txHash"),
        Column("status", SWEEP_STATUS, "status", required=True, default="pending"),
        Column("swept_at", TIMESTAMP, "sweptAt"),
        Column("created_at", TIMESTAMP, "createdAt", required=True),
    ),
)

LOADER = LoaderSpec(
    name="derived_destination_sweeps",
    collection="deriveddestinationsweeps",
    domain="payments",
    tables=(DERIVED_DESTINATION_SWEEPS,),
    flags=("REPO_DERIVED_DESTINATION",),
)
