"""SQL migration files read as objects, for adopting a database the application already built.

Each statement is parsed by PostgreSQL's own grammar (pglast) and names the object it
creates, drops or changes. Walking the whole history tells which statements the end state
keeps (0002 drops the 0000 tables and creates them again; 0013 replaces id_map's key), and a
live catalog tells which of those objects a database already holds: by name, or by
definition under the application's own name (a unique index where the history declares a
unique constraint, a foreign key named otherwise).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from pglast import ast, parse_sql
from pglast.enums import AlterTableType, ConstrType, ObjectType
from pglast.stream import RawStream

CREATE, DROP, ALTER, DATA = "create", "drop", "alter", "data"
Key = tuple[str, ...]


@dataclass(frozen=True)
class Statement:
    """One statement of a migration file (an ALTER TABLE with several commands is one per
    command), with the object it concerns."""

    file: str
    sql: str
    action: str
    key: Key
    table: str | None = None  # the table an index, constraint, column or trigger belongs to
    creates: tuple[Key, ...] = ()  # what a CREATE TABLE brings with it (columns, inline constraints)
    node: Any = field(default=None, compare=False, repr=False)

    @property
    def label(self) -> str:
        kind, *names = self.key
        if kind in ("column", "default"):
            return f"{kind} {names[0]}.{names[1]}"
        if kind in ("constraint", "trigger"):
            return f"{kind} {names[1]} on {names[0]}"
        if kind == "label":
            return f"enum label {names[0]}.{names[1]!r}"
        if kind == "data":
            return f"data statement {names[1]} of {names[0]}"
        return f"{kind} {names[0]}"


def _name(parts: Iterable[Any]) -> str:
    """A qualified name without the public schema (the application's default)."""
    names = [p.sval for p in parts]
    return ".".join(names[1:] if names[0] == "public" and len(names) > 1 else names)


def _rel(rangevar: ast.RangeVar) -> str:
    return rangevar.relname if rangevar.schemaname in (None, "public") else f"{rangevar.schemaname}.{rangevar.relname}"


def _cols(items: Iterable[Any] | None) -> tuple[str, ...]:
    return tuple(i.sval for i in items or ())


def _auto_name(table: str, con: ast.Constraint, column: str | None) -> str:
    """The name PostgreSQL gives an unnamed constraint (close enough to follow later drops)."""
    if con.conname:
        return con.conname
    cols = column or "_".join(_cols(con.keys) or _cols(con.fk_attrs)) or "expr"
    suffix = {ConstrType.CONSTR_PRIMARY: "pkey", ConstrType.CONSTR_UNIQUE: "key", ConstrType.CONSTR_FOREIGN: "fkey",
              ConstrType.CONSTR_CHECK: "check"}.get(con.contype, "con")
    return f"{table}_pkey" if con.contype == ConstrType.CONSTR_PRIMARY else f"{table}_{cols}_{suffix}"


_KEYED = (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE, ConstrType.CONSTR_FOREIGN, ConstrType.CONSTR_CHECK)


def _table_statement(file: str, sql: str, node: ast.CreateStmt) -> Statement:
    table = _rel(node.relation)
    creates: list[Key] = []
    for element in node.tableElts or ():
        if isinstance(element, ast.ColumnDef):
            creates.append(("column", table, element.colname))
            for con in element.constraints or ():
                if con.contype in _KEYED:
                    creates.append(("constraint", table, _auto_name(table, con, element.colname)))
        elif isinstance(element, ast.Constraint) and element.contype in _KEYED:
            creates.append(("constraint", table, _auto_name(table, element, None)))
    return Statement(file, sql, CREATE, ("table", table), table, tuple(creates), node)


def _alter_statements(file: str, node: ast.AlterTableStmt) -> list[Statement]:
    table = _rel(node.relation)
    out = []
    for cmd in node.cmds:
        single = copy.copy(node)
        single.cmds = (cmd,)
        sql = RawStream()(single)
        t = cmd.subtype
        if t == AlterTableType.AT_AddColumn:
            out.append(Statement(file, sql, CREATE, ("column", table, cmd.def_.colname), table, node=cmd.def_))
        elif t == AlterTableType.AT_AddConstraint:
            out.append(Statement(file, sql, CREATE, ("constraint", table, _auto_name(table, cmd.def_, None)), table,
                                 node=cmd.def_))
        elif t == AlterTableType.AT_DropConstraint:
            out.append(Statement(file, sql, DROP, ("constraint", table, cmd.name), table))
        elif t == AlterTableType.AT_DropColumn:
            out.append(Statement(file, sql, DROP, ("column", table, cmd.name), table))
        elif t == AlterTableType.AT_ColumnDefault:
            out.append(Statement(file, sql, ALTER, ("default", table, cmd.name), table, node=cmd.def_))
        else:
            out.append(Statement(file, sql, ALTER, ("alter", table, f"{t.name} {cmd.name or ''}".strip()), table))
    return out


_DROPPED = {ObjectType.OBJECT_TABLE: "table", ObjectType.OBJECT_INDEX: "index", ObjectType.OBJECT_TYPE: "type",
            ObjectType.OBJECT_FUNCTION: "function", ObjectType.OBJECT_SCHEMA: "schema"}


def _drop_statements(file: str, sql: str, node: ast.DropStmt) -> list[Statement]:
    out = []
    for obj in node.objects:
        if node.removeType == ObjectType.OBJECT_TRIGGER:
            *table, trigger = [p.sval for p in obj]
            out.append(Statement(file, sql, DROP, ("trigger", ".".join(table), trigger), ".".join(table)))
        elif node.removeType in _DROPPED:
            parts = obj.names if isinstance(obj, ast.TypeName) else (obj.objname if isinstance(obj, ast.ObjectWithArgs)
                                                                      else obj)
            out.append(Statement(file, sql, DROP, (_DROPPED[node.removeType], _name(parts))))
        else:
            out.append(Statement(file, sql, ALTER, ("drop", node.removeType.name, sql[:60])))
    return out


def statements(text: str, file: str) -> list[Statement]:
    """The statements of one migration file, in order."""
    out: list[Statement] = []
    for index, raw in enumerate(parse_sql(text)):
        node = raw.stmt
        sql = text[raw.stmt_location:raw.stmt_location + raw.stmt_len] if raw.stmt_len else text[raw.stmt_location:]
        sql = sql.strip()
        if isinstance(node, ast.CreateSchemaStmt):
            out.append(Statement(file, sql, CREATE, ("schema", node.schemaname), node=node))
        elif isinstance(node, ast.CreateEnumStmt):
            name = _name(node.typeName)
            labels = tuple(("label", name, v.sval) for v in node.vals)
            out.append(Statement(file, sql, CREATE, ("type", name), creates=labels, node=node))
        elif isinstance(node, ast.AlterEnumStmt) and node.newVal:
            out.append(Statement(file, sql, CREATE, ("label", _name(node.typeName), node.newVal), node=node))
        elif isinstance(node, ast.CreateStmt):
            out.append(_table_statement(file, sql, node))
        elif isinstance(node, ast.IndexStmt):
            out.append(Statement(file, sql, CREATE, ("index", node.idxname), _rel(node.relation), node=node))
        elif isinstance(node, ast.CreateFunctionStmt):
            out.append(Statement(file, sql, CREATE, ("function", _name(node.funcname)), node=node))
        elif isinstance(node, ast.CreateTrigStmt):
            table = _rel(node.relation)
            out.append(Statement(file, sql, CREATE, ("trigger", table, node.trigname), table, node=node))
        elif isinstance(node, ast.AlterTableStmt):
            out += _alter_statements(file, node)
        elif isinstance(node, ast.DropStmt):
            out += _drop_statements(file, sql, node)
        else:  # INSERT, UPDATE, DO ...: data migrations of the history
            out.append(Statement(file, sql, DATA, ("data", file, str(index + 1)), node=node))
    return out


# --- the end state of a history ----------------------------------------------------------------

def standing(history: Sequence[Statement]) -> set[int]:
    """Indexes of the statements whose effect the end of ``history`` keeps: the last creation
    of each object still there, and the drops of objects not created again afterwards."""
    alive: dict[Key, int] = {}
    drops: dict[Key, int] = {}
    for i, st in enumerate(history):
        if st.action == CREATE:
            for key in (st.key, *st.creates):
                alive[key] = i
                drops.pop(key, None)
        elif st.action == DROP:
            gone = [st.key]
            if st.key[0] == "table":  # its columns, constraints, indexes and triggers go with it
                gone += [k for k in alive if len(k) > 2 and k[1] == st.key[1]]
                gone += [k for k, j in alive.items() if k[0] == "index" and history[j].table == st.key[1]]
            for key in gone:
                alive.pop(key, None)
            drops[st.key] = i
    keep = {i for key, i in alive.items() if history[i].key == key}
    keep |= set(drops.values())
    keep |= {i for i, st in enumerate(history) if st.action in (ALTER, DATA)}
    return keep


# --- what a live database holds ---------------------------------------------------------------

def normalized(expr: str) -> str:
    """An expression's text with casts, parentheses, quotes of identifiers and blanks removed:
    ``(amount > (0)::numeric)`` and ``amount > 0`` compare equal."""
    text = re.sub(r"::[a-z_ ]+(\[\])?", "", expr.lower())
    return re.sub(r"[\s()\"]", "", text)


@dataclass
class Catalog:
    """The objects of the ``public`` and ``migration`` schemas of a live database."""

    schemas: set[str]
    labels: dict[str, list[str]]  # enum type -> labels
    tables: set[str]
    columns: dict[tuple[str, str], tuple[str, bool, bool]]  # (table, column) -> (type, not null, has default)
    constraints: list[tuple[str, str, str, tuple[str, ...], str | None, str]]  # table, name, type, cols, ref, def
    indexes: list[tuple[str, str, bool, tuple[str, ...], str]]  # table, name, unique, key texts, predicate
    triggers: list[tuple[str, str, str, int, bool]]  # table, name, function, tgtype, enabled
    functions: set[str]

    @classmethod
    def read(cls, conn: psycopg.Connection) -> Catalog:
        q = lambda sql: conn.execute(sql).fetchall()  # noqa: E731
        qual = "CASE WHEN n.nspname = 'public' THEN c.relname ELSE n.nspname || '.' || c.relname END"
        in_scope = "n.nspname IN ('public', 'migration')"
        labels: dict[str, list[str]] = {}
        for typ, label in q("SELECT t.typname, e.enumlabel FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid "
                            "JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = 'public' "
                            "ORDER BY t.typname, e.enumsortorder"):
            labels.setdefault(typ, []).append(label)
        return cls(
            schemas={r[0] for r in q("SELECT nspname FROM pg_namespace")},
            labels=labels,
            tables={r[0] for r in q(f"SELECT {qual} FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                                    f"WHERE c.relkind IN ('r', 'p') AND {in_scope}")},
            columns={(r[0], r[1]): (r[2], r[3], r[4]) for r in q(
                f"SELECT {qual}, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.atthasdef "
                f"FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                f"WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND {in_scope}")},
            constraints=[(r[0], r[1], r[2], tuple(r[3] or ()), r[4], r[5]) for r in q(
                f"SELECT {qual}, con.conname, con.contype::text, "
                f"ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, o) "
                f"      JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o), "
                f"CASE WHEN con.confrelid <> 0 THEN con.confrelid::regclass::text END, pg_get_constraintdef(con.oid) "
                f"FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid "
                f"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {in_scope}")],
            indexes=[(r[0], r[1], r[2], tuple(r[3]), r[4] or "") for r in q(
                f"SELECT {qual}, ic.relname, i.indisunique, "
                f"ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true) FROM generate_series(1, i.indnkeyatts) k), "
                f"pg_get_expr(i.indpred, i.indrelid) "
                f"FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid "
                f"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {in_scope}")],
            triggers=[(r[0], r[1], r[2], r[3], r[4]) for r in q(
                f"SELECT {qual}, t.tgname, p.proname, t.tgtype, t.tgenabled <> 'D' FROM pg_trigger t "
                f"JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                f"JOIN pg_proc p ON p.oid = t.tgfoid WHERE NOT t.tgisinternal AND {in_scope}")],
            functions={r[0] for r in q("SELECT CASE WHEN n.nspname = 'public' THEN p.proname "
                                       "ELSE n.nspname || '.' || p.proname END FROM pg_proc p "
                                       "JOIN pg_namespace n ON n.oid = p.pronamespace "
                                       "WHERE n.nspname IN ('public', 'migration')")},
        )

    # --- one statement's object ----------------------------------------------------------------

    def holds(self, st: Statement) -> str | None:
        """The name under which the database holds what ``st`` creates (None: it does not)."""
        kind, *names = st.key
        if kind == "schema":
            return names[0] if names[0] in self.schemas else None
        if kind == "type":
            return names[0] if names[0] in self.labels else None
        if kind == "label":
            return names[1] if names[1] in self.labels.get(names[0], ()) else None
        if kind == "table":
            return names[0] if names[0] in self.tables else None
        if kind == "column":
            return names[1] if tuple(names) in self.columns else None
        if kind == "default":
            column = self.columns.get((names[0], names[1]))
            return names[1] if column and column[2] else None
        if kind == "function":
            return names[0] if names[0] in self.functions else None
        if kind == "constraint":
            return self.constraint_like(st.table, names[1], st.node)
        if kind == "index":
            return self.index_like(st.table, names[0], st.node)
        if kind == "trigger":
            return self.trigger_like(st.table, names[1], st.node)
        return None

    def constraint_like(self, table: str, name: str, con: ast.Constraint) -> str | None:
        mine = [c for c in self.constraints if c[0] == table]
        if any(c[1] == name for c in mine):
            return name
        want = {ConstrType.CONSTR_PRIMARY: "p", ConstrType.CONSTR_UNIQUE: "u", ConstrType.CONSTR_FOREIGN: "f",
                ConstrType.CONSTR_CHECK: "c"}.get(con.contype)
        cols = _cols(con.keys) or _cols(con.fk_attrs)
        for t, other, contype, ccols, ref, definition in mine:
            if contype != want:
                continue
            if want in ("p", "u") and ccols == cols:
                return other
            if want == "f" and ccols == cols and ref and ref.split(".")[-1] == con.pktable.relname:
                return other
            if want == "c" and normalized(definition).removeprefix("check") == normalized(RawStream()(con.raw_expr)):
                return other
        if want == "u":  # a unique index does what a unique constraint does for ON CONFLICT
            for t, other, unique, keys, predicate in self.indexes:
                if t == table and unique and not predicate and tuple(normalized(k) for k in keys) == cols:
                    return other
        return None

    def index_like(self, table: str, name: str, idx: ast.IndexStmt) -> str | None:
        keys = tuple(normalized(p.name if p.name else RawStream()(p.expr)) for p in idx.indexParams)
        predicate = normalized(RawStream()(idx.whereClause)) if idx.whereClause else ""
        for t, other, unique, their_keys, their_predicate in self.indexes:
            if other == name or (t == table and unique == bool(idx.unique)
                                 and tuple(normalized(k) for k in their_keys) == keys
                                 and normalized(their_predicate) == predicate):
                return other
        return None

    def trigger_like(self, table: str, name: str, trig: ast.CreateTrigStmt) -> str | None:
        function = trig.funcname[-1].sval
        for t, other, their_function, tgtype, _ in self.triggers:
            if t == table and (other == name or (their_function == function and tgtype & 0x3C == _events(trig))):
                return other
        return None


def _events(trig: ast.CreateTrigStmt) -> int:
    """pg_trigger.tgtype's event bits (INSERT 4, DELETE 8, UPDATE 16, TRUNCATE 32) of a CREATE TRIGGER."""
    return trig.events & 0x3C
