"""A first draft of ``tables/<domain>/<name>.py`` for a collection no spec covers yet, from
its census: snake_case columns, kinds from the observed BSON types, ``required`` from
presence, arrays of objects as child tables, references where the values are ObjectIds of
a known collection. The person finishing it writes the target DDL and reviews the guesses
(every guess the draft cannot stand behind is marked ``# review:``).

A draft stays within PostgreSQL's limits: names of at most 63 bytes (longer ones are cut and
given a short hash), at most ``MAX_COLUMNS`` columns per table (the fields with the most
columns become one JSON column each until it fits), and a map (the census's ``<key>``
paths: an object keyed by ids) is one JSON column, marked for review."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bson import ObjectId

from migration_assets.source.census import MAP_KEY, Census, PathStats

INTEGER = {"int", "long"}
NUMBER = {"int", "long", "double", "decimal"}
MAX_IDENTIFIER = 63  # bytes: PostgreSQL's NAMEDATALEN - 1
MAX_COLUMNS = 1500  # PostgreSQL allows 1,600 per table; room is left for the hand-written ones


def snake(name: str) -> str:
    """``deliveryInfo.preferredDate`` -> ``delivery_info_preferred_date``; any character an
    unquoted identifier cannot hold becomes ``_``; at most 63 bytes (a cut name ends with a
    hash of the whole, so two long names stay apart)."""
    name = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    name = re.sub(r"[^0-9A-Za-z_]+", "_", name).strip("_").lower()
    name = re.sub(r"_+", "_", name) or "field"
    if name[0].isdigit():
        name = "f_" + name
    if len(name.encode()) > MAX_IDENTIFIER:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = name[:MAX_IDENTIFIER - 9] + "_" + digest
    return name


@dataclass
class DraftColumn:
    name: str
    kind: str  # a constant or call of specs.kinds / specs.enums
    path: str
    required: bool
    note: str = ""


@dataclass
class DraftTable:
    table: str
    path: str | None  # None: the document itself; else the array it comes from
    columns: list[DraftColumn] = field(default_factory=list)


def kind_of(stats: PathStats, reference: str | None) -> tuple[str, str]:
    """(kind expression, review note) for one path's observed types (null does not count)."""
    types = {t for t in stats.types if t != "null"}
    if reference:
        return f'Ref("{reference}")', ""
    if types == {"string"}:
        return "TEXT", ""
    if types == {"bool"}:
        return "BOOL", ""
    if types == {"date"}:
        return "TIMESTAMP", ""
    if types and types <= INTEGER:
        return ("BIGINT" if "long" in types else "INT"), ""
    if types and types <= NUMBER:
        return "MONEY", "review: numbers of several types; exact numeric(38,18) assumed"
    if types == {"objectId"}:
        return "JSON", "review: ObjectIds of no known collection; a Ref once that collection has a loader"
    return "JSON", f"review: {', '.join(sorted(types)) or 'only nulls'}; kept as JSON"


def draft(collection: str, domain: str, census: Census, *, name: str | None = None,
          owner_of: Callable[[list[ObjectId]], str | None] = lambda ids: None) -> str:
    """The module's source text. ``owner_of(ids)``: the table of the known collection
    holding these ObjectIds (a reference), or None."""
    name = name or snake(collection)
    paths = census.paths
    root = DraftTable(name, None)
    children: list[DraftTable] = []
    ignored = {p: "Mongoose version key" for p in paths if p == "__v"}

    def scalar_columns(table: DraftTable, prefix: str, within: int) -> None:
        maps = {p.split("." + MAP_KEY)[0] for p in paths if ("." + MAP_KEY) in p}
        for path, stats in sorted(paths.items()):
            if not path.startswith(prefix) or path in ignored or path == "_id":
                continue
            rel = path[len(prefix):]
            if "[]" in rel or MAP_KEY in rel:
                continue  # arrays: children (objects) or text arrays (strings), below; maps: one JSON column
            types = {t for t in stats.types if t != "null"}
            if path in maps:
                keys = paths.get(path + "." + MAP_KEY)
                n = keys.distinct_keys if keys and keys.distinct_keys else "many"
                table.columns.append(DraftColumn(snake(rel), "JSON", rel, False,
                                                 f"review: a map keyed by data ({n} distinct keys); JSON here, "
                                                 "a child table (key, value) would let PostgreSQL index it"))
                continue
            if types == {"object"}:
                continue  # its fields are columns of their own (flattened)
            if types == {"array"}:
                items = paths.get(path + "[]")
                item_types = {t for t in (items.types if items else {}) if t != "null"}
                if item_types == {"object"}:
                    children.append(child_table(path))
                elif item_types <= {"string"}:
                    table.columns.append(DraftColumn(snake(rel), "TEXT_ARRAY", rel, False))
                else:
                    table.columns.append(DraftColumn(snake(rel), "JSON", rel, False,
                                                     f"review: an array of {', '.join(sorted(item_types))}"))
                continue
            if prefix and rel == "_id" and types == {"objectId"}:
                continue  # a subdocument's own id: its legacy id
            examples = [v for v in stats.examples if isinstance(v, ObjectId)]
            reference = owner_of(examples) if types == {"objectId"} and examples else None
            kind, note = kind_of(stats, reference)
            required = stats.documents == within and "null" not in stats.types
            table.columns.append(DraftColumn(snake(rel), kind, rel, required, note))

    def child_table(path: str) -> DraftTable:
        child = DraftTable(snake(f"{name}_{snake(path)}"), path)
        items = paths[path + "[]"]
        scalar_columns(child, path + "[].", items.documents)
        return child

    scalar_columns(root, "", census.documents)
    for table in [root, *children]:
        fit(table, paths)
    return render(collection, domain, name, root, children, ignored, census.documents)


def fit(table: DraftTable, paths: Mapping[str, PathStats]) -> None:
    """At most ``MAX_COLUMNS`` columns, each name unique: the top-level field with the most
    columns becomes one JSON column while there are too many."""
    while len(table.columns) > MAX_COLUMNS:
        by_field: dict[str, list[DraftColumn]] = {}
        for c in table.columns:
            by_field.setdefault(c.path.split(".")[0], []).append(c)
        top, cols = max(by_field.items(), key=lambda kv: len(kv[1]))
        if len(cols) < 2:
            break  # nothing left to fold: as many fields as columns (not met in real collections)
        table.columns = [c for c in table.columns if c.path.split(".")[0] != top]
        table.columns.append(DraftColumn(snake(top), "JSON", top, False,
                                         f"review: {len(cols)} paths under {top} kept as one JSON column "
                                         f"(a table may have at most 1,600 columns)"))
    seen: set[str] = set()
    for c in table.columns:
        name, i = c.name, 1
        while name in seen:
            i += 1
            name = snake(f"{c.name}_{i}")
        c.name = name
        seen.add(name)


def quoted(text: str) -> str:
    """A Python string literal of any field name, double-quoted as the specs write them."""
    r = repr(text)
    return r if r[0] == '"' else '"' + r[1:-1].replace("\\'", "'").replace('"', '\\"') + '"'


def _column(c: DraftColumn) -> str:
    args = f"{quoted(c.name)}, {c.kind}, {quoted(c.path)}" + (", required=True" if c.required else "")
    note = " ".join(c.note.split())
    return f"        Column({args}),{'  # ' + note if note else ''}"


def render(collection: str, domain: str, name: str, root: DraftTable, children: list[DraftTable],
           ignored: Mapping[str, str], documents: int) -> str:
    const = name.upper()
    lines = [f'"""{snake(collection)} (Mongo collection {collection!r}) -> ``{name}``: a draft from the census of '
             f"{documents} documents (migration-assets scaffold).", "",
             "Left to do: write the target DDL in sql/proposed/ (or take the application's), review every",
             '``# review:`` guess and the kinds, and describe the awkward cases here."""', "",
             "from migration_assets.specs.columns import id_column, legacy_column, parent_column",
             "from migration_assets.specs.kinds import BIGINT, BOOL, INT, JSON, MONEY, TEXT, TEXT_ARRAY, TIMESTAMP, Ref",
             "from migration_assets.specs.model import Column, LoaderSpec, TableSpec, array", "",
             f"{const} = TableSpec(", f'    table="{name}",', "    columns=(", f'        id_column("{name}"),',
             "        legacy_column(),"]
    lines += [_column(c) for c in root.columns] + ["    ),", ")", ""]
    for child in children:
        lines += [f"{child.table.upper()} = TableSpec(", f'    table="{child.table}",', f"    rows=array({quoted(child.path)}),",
                  f'    parent_column="{name}_id",', f'    key=("{name}_id", "position"),', "    columns=(",
                  f'        parent_column("{name}_id", "{name}"),', '        Column("position", INT, "$index", required=True),']
        lines += [_column(c) for c in child.columns] + ["    ),", ")", ""]
    tables = ", ".join([const] + [c.table.upper() for c in children])
    lines += ["LOADER = LoaderSpec(", f'    name="{name}",', f"    collection={quoted(collection)},", f'    domain="{domain}",',
              f"    tables=({tables},),"]
    if ignored:
        lines.append("    ignored={" + ", ".join(f"{quoted(k)}: {quoted(v)}" for k, v in ignored.items()) + "},")
    lines += [")", ""]
    return "\n".join(lines)
