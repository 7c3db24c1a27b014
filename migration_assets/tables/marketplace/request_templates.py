"""request templates (Mongo ``requesttemplates``) -> ``request_templates``."""

from migration_assets.specs.columns import id_column, legacy_column
from migration_assets.specs.enums import CURRENCY
from migration_assets.specs.kinds import BOOL, INT, MONEY, TEXT, TIMESTAMP, Ref
from migration_assets.specs.model import Column, LoaderSpec, TableSpec

REQUEST_TEMPLATES = TableSpec(
    table="request_templates",
    description="Reusable purchase-request templates.",
    columns=(
        id_column("request_templates"),
        legacy_column(),
        Column("owner_id", Ref("users"), "owner", required=True),
        Column("category_id", Ref("categories"), "category", required=True),
        Column("title", TEXT, "title", required=True),
        Column("description", TEXT, "description"),
        Column("default_quantity", INT, "defaultQuantity", required=True, default=1),
        Column("budget_amount", MONEY, "budget.amount"),
        Column("budget_currency", CURRENCY, "budget.currency", required=True, default="USDT"),
        Column("is_public", BOOL, "isPublic", required=True, default=False),
        Column("created_at", TIMESTAMP, "createdAt", required=True),
        Column("updated_at", TIMESTAMP, "updatedAt"),
    ),
)

LOADER = LoaderSpec(
    name="request_templates",
    collection="requesttemplates",
    domain="marketplace",
    tables=(REQUEST_TEMPLATES,),
    flags=("REPO_MARKETPLACE",),
    ranged=True,  # grows with the marketplace: loads in _id ranges, one step each (load/ranged.py)
)
