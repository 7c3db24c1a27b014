"""Column and rule helpers the table specs share: ids, legacy ids, parent links, the
postal address shape, and the once-per-group flags (an active category name, a user's
primary address) that PostgreSQL enforces and Mongo never did."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from migration_assets.specs.kinds import LEGACY_ID, TEXT, DerivedId, Ref, RowId
from migration_assets.specs.model import Column


def id_column(table: str, path: str = "_id") -> Column:
    return Column("id", RowId(table), path, required=True, doc="uuid5 of the legacy id (or the existing row's id)")


def derived_id_column(table: str) -> Column:
    """``id`` of a zero-or-one child row without a legacy id: uuid5 of table + document ``_id``."""
    return Column("id", DerivedId(table), "$root._id", required=True,
                  doc="uuid5 of this table and the enclosing document's _id")


def legacy_column(path: str = "_id") -> Column:
    return Column("legacy_object_id", LEGACY_ID, path, required=True, doc="Mongo _id as 24 hex characters")


def parent_column(name: str, table: str) -> Column:
    return Column(name, Ref(table), "$root._id", required=True, doc=f"the enclosing {table} document")


def postal_address_columns() -> tuple[Column, ...]:
    """The postal address shape the backend uses everywhere (user addresses, delivery addresses)."""
    return (
        Column("recipient_name", TEXT, "recipientName"),
        Column("line1", TEXT, "line1", required=True),
        Column("line2", TEXT, "line2"),
        Column("city", TEXT, "city", required=True),
        Column("region", TEXT, "region"),
        Column("postal_code", TEXT, "postalCode"),
        Column("country_code", TEXT, "country", required=True),
        Column("phone", TEXT, "phone"),
    )


def demote_duplicates(docs: Iterable[Mapping[str, Any]], *, flagged: Callable[[Mapping[str, Any]], bool],
                      group: Callable[[Mapping[str, Any]], Any], rank: Callable[[Mapping[str, Any]], Any],
                      keep: str = "first") -> dict[str, str]:
    """A flag PostgreSQL allows once per group that Mongo holds several times: among the
    flagged documents of a group, keep the first (or last) by ``rank``; returns each other
    one's ``_id`` -> the kept one's ``_id``."""
    members = []
    for d in docs:
        if flagged(d):
            g = group(d)
            if g is not None:
                members.append((g, rank(d), str(d["_id"])))
    kept: dict[Any, str] = {}
    for g, _, oid in sorted(members, key=lambda m: m[1], reverse=keep == "last"):
        kept.setdefault(g, oid)
    return {oid: kept[g] for g, _, oid in members if kept[g] != oid}


def flag_unless_demoted(field: str, default: bool, ctx_key: str):
    """``compute`` of a flag column: the document's flag, false for a demoted duplicate."""

    def compute(source: Mapping[str, Any], doc: Mapping[str, Any], ctx: Mapping[str, Any]) -> Any:
        value = doc.get(field, default)
        if value is True and str(doc["_id"]) in ctx.get(ctx_key, {}):
            return False
        return value

    return compute
