"""Integrity, business and funds-ledger invariant checks, built from the specs."""

import dagster as dg

from migration_assets.factory.invariant_checks import (
           build_invariant_checks,
           build_ledger_checks,
           build_remap_rule_checks,
)
from migration_assets.specs.registry import all_loaders

_checks = ([build_invariant_checks(l) for l in all_loaders()] + [build_ledger_checks()]
           + [c for l in all_loaders() for c in build_remap_rule_checks(l)])

defs = dg.Definitions(asset_checks=[c for c in _checks if c is not None])
