"""The PostgreSQL side: the guard (allowlist, connections, loader lock), the writes, the
bookkeeping of the ``migration`` schema, the application's dual-write gaps, and the schema
runner. Imports specs, source and transform; no dagster."""
