"""level configuration (Mongo ``levelconfigs``) -> ``level_configs`` (sql/0019).

Document shape::

    {_id, level: int, name, minPoints: int | double, perks?: [str], createdAt, updatedAt?}

The loyalty levels PointsService reads (the LEVEL_CONFIG_STORE facade). ``level`` is
unique; ``minPoints >= 0`` (a CHECK: a negative threshold is refused into quarantine);
``perks`` is absent on the levels seeded before perks existed (-> empty array). Moves with
``LEVEL_CONFIG_STORE`` (alias ``LEVEL_STORE``).
"""

from migration_assets.specs.columns import id_column, legacy_column
from migration_assets.specs.kinds import INT, TEXT, TEXT_ARRAY, TIMESTAMP
from migration_assets.specs.model import Column, LoaderSpec, TableSpec

LEVEL_CONFIGS = TableSpec(
    table="level_configs",
    description="Loyalty levels: thresholds and perks.",
    columns=(
        id_column("level_configs"),
        legacy_column(),
        Column("level", INT, "level", required=True),
        Column("name", TEXT, "name", required=True),
        Column("min_points", INT, "minPoints", required=True),
        Column("perks", TEXT_ARRAY, "perks", required=True, default=[]),
        Column("created_at", TIMESTAMP, "createdAt", required=True),
        Column("updated_at", TIMESTAMP, "updatedAt"),
    ),
)

LOADER = LoaderSpec(
    name="level_configs",
    collection="levelconfigs",
    domain="points_wallet",
    tables=(LEVEL_CONFIGS,),
    flags=("LEVEL_CONFIG_STORE", "LEVEL_STORE"),
)
