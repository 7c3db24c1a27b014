"""The migration domains as a partitions definition (for cross-domain assets)."""

import dagster as dg

from migration_assets.specs.registry import DOMAINS

DOMAIN_PARTITIONS = dg.StaticPartitionsDefinition(list(DOMAINS))
