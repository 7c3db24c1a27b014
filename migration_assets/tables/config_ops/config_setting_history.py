"""configuration history (Mongo ``configsettinghistories``) -> ``config_setting_history``.

Document shape::

    {_id, setting: ObjectId(configsettings), key, oldValue?: <any>, newValue: <any>,
     changedBy?: ObjectId(users), changedAt}

One document per change of a setting. Values are of any JSON type, like the setting's
(see ``config_settings``); ``oldValue`` is absent on a setting's first entry, ``changedBy``
on changes made by seed scripts. ``key`` repeats the setting's key as it was at the time.
An entry whose setting is not in PostgreSQL is quarantined. Moves with ``CONFIG_STORE``.
"""

from migration_assets.specs.columns import id_column, legacy_column
from migration_assets.specs.kinds import JSON, TEXT, TIMESTAMP, Ref
from migration_assets.specs.model import Column, LoaderSpec, TableSpec

CONFIG_SETTING_HISTORY = TableSpec(
    table="config_setting_history",
    description="Audit trail of configuration changes.",
    columns=(
        id_column("config_setting_history"),
        legacy_column(),
        Column("setting_id", Ref("config_settings"), "setting", required=True),
        Column("key", TEXT, "key", required=True),
        Column("old_value", JSON, "oldValue"),
        Column("new_value", JSON, "newValue", required=True),
        Column("changed_by", Ref("users"), "changedBy"),
        Column("changed_at", TIMESTAMP, "changedAt", required=True),
    ),
)

LOADER = LoaderSpec(
    name="config_setting_history",
    collection="configsettinghistories",
    domain="config_ops",
    tables=(CONFIG_SETTING_HISTORY,),
    flags=("CONFIG_STORE",),
)
