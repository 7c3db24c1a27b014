"""seller offers (Mongo ``selleroffers``) -> ``seller_offers``."""

from migration_assets.specs.columns import id_column, legacy_column
from migration_assets.specs.enums import CURRENCY, SELLER_OFFER_STATUS
from migration_assets.specs.kinds import INT, MONEY, TEXT, TIMESTAMP, Ref
from migration_assets.specs.model import Column, LoaderSpec, TableSpec

SELLER_OFFERS = TableSpec(
    table="seller_offers",
    description="Sellers' offers on purchase requests.",
    columns=(
        id_column("seller_offers"),
        legacy_column(),
        Column("purchase_request_id", Ref("purchase_requests"), "purchaseRequest", required=True),
        Column("seller_id", Ref("users"), "seller", required=True),
        Column("price", MONEY, "price.amount", required=True),
        Column("currency", CURRENCY, "price.currency", required=True),
        Column("delivery_days", INT, "deliveryDays"),
        Column("message", TEXT, "message"),
        Column("status", SELLER_OFFER_STATUS, "status", required=True, default="pending"),
        Column("created_at", TIMESTAMP, "createdAt", required=True),
        Column("updated_at", TIMESTAMP, "updatedAt"),
    ),
)

LOADER = LoaderSpec(
    name="seller_offers",
    collection="selleroffers",
    domain="marketplace",
    tables=(SELLER_OFFERS,),
    flags=("REPO_MARKETPLACE",),
    ranged=True,  # grows with the marketplace: loads in _id ranges, one step each (load/ranged.py)
)
