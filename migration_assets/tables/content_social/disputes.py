"""disputes (Mongo ``disputes``) -> ``disputes`` (sql/0012).

Document shape::

    {_id, purchaseRequest: ObjectId(purchaserequests), payment?: ObjectId(payments),
     openedBy: ObjectId(users), againstUser?: ObjectId(users), reason, status?,
     resolution?, createdAt, updatedAt?, resolvedAt?}

A buyer's (or seller's) dispute of a purchase. ``payment`` is absent when the dispute was
opened before paying; ``againstUser`` on disputes against the platform; ``status`` on the
first disputes (-> open); ``resolution``/``resolvedAt`` until resolved. Depends on the
payments domain (``payment_id``). Moves with ``REPO_DISPUTE`` / ``DISPUTE_STORE``.
"""

from migration_assets.specs.columns import id_column, legacy_column
from migration_assets.specs.enums import DISPUTE_STATUS
from migration_assets.specs.kinds import TEXT, TIMESTAMP, Ref
from migration_assets.specs.model import Column, LoaderSpec, TableSpec

DISPUTES = TableSpec(
    table="disputes",
    description="Disputes over purchase requests and their payments.",
    columns=(
        id_column("disputes"),
        legacy_column(),
        Column("purchase_request_id", Ref("purchase_requests"), "purchaseRequest", required=True),
        Column("payment_id", Ref("payments"), "payment"),
        Column("opened_by", Ref("users"), "openedBy", required=True),
        Column("against_user_id", Ref("users"), "againstUser"),
        Column("reason", TEXT, "reason", required=True),
        Column("status", DISPUTE_STATUS, "status", required=True, default="open"),
        Column("resolution", TEXT, "resolution"),
        Column("created_at", TIMESTAMP, "createdAt", required=True),
        Column("updated_at", TIMESTAMP, "updatedAt"),
        Column("resolved_at", TIMESTAMP, "resolvedAt"),
    ),
)

LOADER = LoaderSpec(
    name="disputes",
    collection="disputes",
    domain="content_social",
    tables=(DISPUTES,),
    flags=("REPO_DISPUTE", "DISPUTE_STORE"),
)
