"""release holds (Mongo ``releaseholds``) -> ``release_holds`` (sql/0019).

Document shape::

    {_id, payment: ObjectId(payments), purchaseRequest: ObjectId(purchaserequests),
     amount: Decimal128 | double, currency, reason?, status?, releaseAfter?, releasedAt?,
     createdAt, updatedAt?}

The seed's ReleaseHold domain: a hold that delays releasing (part of) an escrowed payment
to the seller, bridging payments and purchase requests (``DrizzleReleaseHoldRepo``; no
dual-write wrapper, so Mongo is the only source). ``amount > 0``; ``status`` absent on the
first holds (-> ``held``); ``releasedAt`` only once released. A hold whose payment or
purchase request is not in PostgreSQL is quarantined. Moves with ``REPO_RELEASE_HOLD`` /
``RELEASE_HOLD_STORE``.
"""

from migration_assets.specs.columns import id_column, legacy_column
from migration_assets.specs.enums import CURRENCY, RELEASE_HOLD_STATUS
from migration_assets.specs.kinds import MONEY, TEXT, TIMESTAMP, Ref
from migration_assets.specs.model import Column, LoaderSpec, TableSpec

RELEASE_HOLDS = TableSpec(
    table="release_holds",
    description="Holds delaying the release of escrowed payments.",
    columns=(
        id_column("release_holds"),
        legacy_column(),
        Column("payment_id", Ref("payments"), "payment", required=True),
        Column("purchase_request_id", Ref("purchase_requests"), "purchaseRequest", required=True),
        Column("amount", MONEY, "amount", required=True),
        Column("currency", CURRENCY, "currency", required=True),
        Column("reason", TEXT, "reason"),
        Column("status", RELEASE_HOLD_STATUS, "status", required=True, default="held"),
        Column("release_after", TIMESTAMP, "releaseAfter"),
        Column("released_at", TIMESTAMP, "releasedAt"),
        Column("created_at", TIMESTAMP, "createdAt", required=True),
        Column("updated_at", TIMESTAMP, "updatedAt"),
    ),
)

LOADER = LoaderSpec(
    name="release_holds",
    collection="releaseholds",
    domain="payments",
    tables=(RELEASE_HOLDS,),
    flags=("REPO_RELEASE_HOLD", "RELEASE_HOLD_STORE"),
)
