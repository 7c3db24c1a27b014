"""One module per Mongo collection, grouped by domain. Each defines ``LOADER``: the
collection, the PostgreSQL tables it feeds and, column by column, where values come from.
Everything else (assets, checks, lineage, the source contract) is derived from these."""
