"""runtime configuration (Mongo ``configsettings``) -> ``config_settings``.

Document shape::

    {_id, key: str, value: <any BSON value>, description?, updatedBy?: ObjectId(users),
     createdAt, updatedAt?}

``value`` is whatever the admin saved, of any JSON type: a number (int, double or
Decimal128: confirmation thresholds), a string, a boolean, a nested object or an array.
It loads into ``jsonb`` keeping its type (``"3"`` stays a string, ``3`` a number, a
Decimal128 an exact number, ObjectIds hex strings, dates ISO-8601 text). A missing or
BSON-null ``value`` is quarantined (the column is NOT NULL: "no value" is not a setting).
``key`` is unique. Only confirmation thresholds are PG-backed in the seed; the migration
moves every setting so the rest can follow. Moves with ``CONFIG_STORE``.
"""

from migration_assets.specs.columns import id_column, legacy_column
from migration_assets.specs.kinds import JSON, TEXT, TIMESTAMP, Ref
from migration_assets.specs.model import Column, LoaderSpec, TableSpec

CONFIG_SETTINGS = TableSpec(
    table="config_settings",
    description="Admin-editable runtime settings (JSON values of any type).",
    columns=(
        id_column("config_settings"),
        legacy_column(),
        Column("key", TEXT, "key", required=True),
        Column("value", JSON, "value", required=True),
        Column("description", TEXT, "description"),
        Column("updated_by", Ref("users"), "updatedBy"),
        Column("created_at", TIMESTAMP, "createdAt", required=True),
        Column("updated_at", TIMESTAMP, "updatedAt"),
    ),
)

LOADER = LoaderSpec(
    name="config_settings",
    collection="configsettings",
    domain="config_ops",
    tables=(CONFIG_SETTINGS,),
    flags=("CONFIG_STORE",),
)
