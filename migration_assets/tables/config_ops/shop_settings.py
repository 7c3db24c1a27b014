"""sellers' shop settings (Mongo ``shopsettings``) -> ``shop_settings``.

Document shape::

    {_id, seller: ObjectId(users), shopName, description?, reviewsEnabled?: bool,
     paymentRails?: [str], isActive?: bool, createdAt, updatedAt?}

One document per seller (``seller_id`` is unique). Shops created before review gating or
payment-rail selection lack ``reviewsEnabled`` (-> true), ``paymentRails`` (-> empty
array) and ``isActive`` (-> true). Moves with ``SHOP_SETTINGS_STORE``.
"""

from migration_assets.specs.columns import id_column, legacy_column
from migration_assets.specs.kinds import BOOL, TEXT, TEXT_ARRAY, TIMESTAMP, Ref
from migration_assets.specs.model import Column, LoaderSpec, TableSpec

SHOP_SETTINGS = TableSpec(
    table="shop_settings",
    description="Sellers' shop settings: name, review gate, payment rails.",
    columns=(
        id_column("shop_settings"),
        legacy_column(),
        Column("seller_id", Ref("users"), "seller", required=True),
        Column("shop_name", TEXT, "shopName", required=True),
        Column("description", TEXT, "description"),
        Column("reviews_enabled", BOOL, "reviewsEnabled", required=True, default=True),
        Column("payment_rails", TEXT_ARRAY, "paymentRails", required=True, default=[]),
        Column("is_active", BOOL, "isActive", required=True, default=True),
        Column("created_at", TIMESTAMP, "createdAt", required=True),
        Column("updated_at", TIMESTAMP, "updatedAt"),
    ),
)

LOADER = LoaderSpec(
    name="shop_settings",
    collection="shopsettings",
    domain="config_ops",
    tables=(SHOP_SETTINGS,),
    flags=("SHOP_SETTINGS_STORE",),
)
