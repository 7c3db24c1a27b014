"""Reference resolution: every :class:`LegacyRef` of a batch's rows becomes a uuid.

Own rows reuse the id of a row already in the table (rows the application dual-wrote keep
theirs) or get their deterministic uuid; references to other loaders' tables must exist
there, or the document is rejected naming each missing parent. Only the reference columns
are visited, parents found once are remembered for the run, and a dry run also finds
parents in the shadow tables its simulated parent loads wrote.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import psycopg

from migration_assets.specs.ids import new_id
from migration_assets.specs.kinds import LegacyRef, Ref
from migration_assets.specs.model import LoaderSpec
from migration_assets.target.write import lookup_ids, shadow_exists, shadow_name
from migration_assets.transform.results import DocResult, Rejected, rejected


class ReferenceResolver:
    def __init__(self, loader: LoaderSpec, *, shadow: bool = False):
        self.loader = loader
        self.shadow = shadow
        self.own_tables = set(loader.table_names)
        self.positions = {t.table: [i for i, c in enumerate(t.columns) if isinstance(c.kind, Ref) and not c.deferred]
                          for t in loader.tables}
        self.parents: dict[tuple[str, str], uuid.UUID] = {}  # (table, legacy id) -> uuid, this run

    def resolve(self, conn: psycopg.Connection, results: Sequence[DocResult], fresh: bool
                ) -> tuple[list[DocResult], list[Rejected]]:
        """(documents whose references all resolved, documents rejected for missing parents)."""
        slots = []  # (result index, table, row, position, reference), in row and column order
        wanted_own: dict[str, set[str]] = {}
        wanted_ext: dict[str, set[str]] = {}
        for ri, res in enumerate(results):
            for table, rows in res.rows.items():
                pos = self.positions[table]
                for row in rows if pos else ():
                    for i in pos:
                        v = row[i]
                        if type(v) is LegacyRef:
                            slots.append((ri, table, row, i, v))
                            if v.table in self.own_tables:
                                wanted_own.setdefault(v.table, set()).add(v.legacy_id)
                            elif (v.table, v.legacy_id) not in self.parents:
                                wanted_ext.setdefault(v.table, set()).add(v.legacy_id)
        own: dict[tuple[str, str], uuid.UUID] = {}
        for table, ids in wanted_own.items():
            existing = {} if fresh else lookup_ids(conn, table, ids)
            for legacy in ids:
                own[(table, legacy)] = existing.get(legacy) or new_id(table, legacy)
        for table, ids in wanted_ext.items():
            also = shadow_name(table) if self.shadow and shadow_exists(conn, table) else None
            for legacy, pk in lookup_ids(conn, table, ids, also=also).items():
                self.parents[(table, legacy)] = pk
        missing: dict[int, list[dict[str, str]]] = {}
        for ri, table, row, i, v in slots:
            key = (v.table, v.legacy_id)
            pk = own.get(key) or self.parents.get(key)
            if pk is None:
                column = self.loader.table(table).columns[i]
                missing.setdefault(ri, []).append({
                    "code": "missing_reference", "field": column.path or column.name,
                    "message": f"{table}.{column.name} -> {v.table} {v.legacy_id} does not exist in PostgreSQL"})
            else:
                row[i] = pk
        if not missing:
            return list(results), []
        ok = [res for ri, res in enumerate(results) if ri not in missing]
        return ok, [rejected(results[ri], problems) for ri, problems in sorted(missing.items())]
