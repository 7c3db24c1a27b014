"""Asset keys: PostgreSQL tables are ``public/<table>``; Mongo collections ``mongodb/<collection>``."""

import dagster as dg


def table_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["public", table])


def column_key(table: str, column: str) -> dg.AssetKey:
    """A column written by its own step (the selectedOffer remap)."""
    return dg.AssetKey(["public", table, column])


def collection_key(collection: str) -> dg.AssetKey:
    return dg.AssetKey(["mongodb", collection])
