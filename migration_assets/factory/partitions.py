"""The migration domains as a partitions definition (for cross-domain assets)."""

import dagster as dg

from migration_assets.spec import DOMAINS

DOMAIN_PARTITIONS = dg.StaticPartitionsDefinition(list(DOMAINS))
