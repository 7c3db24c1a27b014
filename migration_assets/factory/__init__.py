"""Specs -> Dagster: the one factory of loader assets, remap assets and their checks, the
resources, keys, metadata and partitions. The first floor that imports dagster; it builds on
every pure stage below it."""
