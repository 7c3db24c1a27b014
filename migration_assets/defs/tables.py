"""Every migrated table: built from the specs under ``migration_assets/tables``. A one-step
loader checks its tables in its load step; a ranged loader in a step of its own."""

import dagster as dg

from migration_assets.factory.assets import build_loader_asset, build_remap_asset, source_collection_asset
from migration_assets.factory.checks import build_loader_checks
from migration_assets.factory.ranged_assets import build_ranged_loader_asset
from migration_assets.specs.registry import all_loaders

defs = dg.Definitions(
    assets=[source_collection_asset(l) for l in all_loaders()]
    + [build_ranged_loader_asset(l) if l.ranged else build_loader_asset(l) for l in all_loaders()]
    + [build_remap_asset(l, r) for l in all_loaders() for r in l.remaps],
    asset_checks=[build_loader_checks(l) for l in all_loaders() if l.ranged],
)
