"""The schema runner: ``sql/application`` and ``sql/proposed`` as the application's owner,
``sql/platform`` as the platform's role, in file-name order across the three.

The application's objects belong to the application. On a database without any of them
each file runs as written (what ``psql -f`` would do). On a database that has them (the
application's own migration tool applied its history, and it is dual-writing rows), every
statement is held against the live catalog (``adoption.py``): an object already there, by
name or by definition, is left as it is; a missing one is created; a statement that would
alter or drop an object the application already has is kept back unless
``alter_application`` says otherwise; a file's data statements run only with the
structural changes of that file that were applied. Every object is reported with what was
done to it.

The platform's files are applied once each and recorded with their sha256 in
``migration.schema_migrations``; an applied file whose content changed is refused.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from migration_assets.target import bookkeeping as bk
from migration_assets.target.adoption import ALTER, CREATE, DATA, DROP, Catalog, Statement, standing, statements

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
PARTS = ("application", "proposed", "platform")  # whose files: sql/<part>/
_LOCK_KEY = 0x6D696772  # advisory lock: one schema runner at a time
PLATFORM_SCHEMA = "migration"

# What was done to an object.
CREATED, PRESENT, KEPT, DROPPED, ABSENT, SKIPPED, APPLIED, ALTERED = (
    "created", "present", "kept", "dropped", "absent", "skipped", "applied", "altered")


class SchemaDrift(RuntimeError):
    """An applied platform file no longer has the content it was applied with."""


class SchemaError(RuntimeError):
    """A statement PostgreSQL refused while applying a file; names the file and the object."""


@dataclass(frozen=True)
class MigrationFile:
    path: Path
    part: str

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")


@dataclass(frozen=True)
class Action:
    file: str
    what: str  # the object ("table users", "constraint x on y") or the file itself
    done: str  # created / present / kept / dropped / absent / skipped / applied / altered
    note: str = ""

    def line(self) -> str:
        return f"{self.file}: {self.what}: {self.done}" + (f" ({self.note})" if self.note else "")


@dataclass
class SchemaResult:
    mode: str = ""  # "install" (no application object existed) or "adopt"
    actions: list[Action] = field(default_factory=list)

    def count(self, done: str) -> int:
        return sum(1 for a in self.actions if a.done == done)

    @property
    def applied(self) -> list[str]:
        """Files of which anything was applied."""
        return sorted({a.file for a in self.actions if a.done in (CREATED, APPLIED, DROPPED, ALTERED)})


def migration_files(sql_dir: Path = SQL_DIR) -> list[MigrationFile]:
    files = [MigrationFile(p, part) for part in PARTS for p in (sql_dir / part).glob("*.sql") if p.is_file()]
    if not files:
        raise FileNotFoundError(f"no .sql files under {sql_dir}/{{{','.join(PARTS)}}}")
    names = [f.name for f in files]
    if len(set(names)) != len(names):
        raise ValueError(f"two sql files share a name under {sql_dir}")
    return sorted(files, key=lambda f: f.name)


def _run(conn: psycopg.Connection, file: MigrationFile, sql: str, what: str) -> None:
    try:
        conn.execute(sql)
    except psycopg.Error as e:
        first = (e.diag.message_primary or str(e)).strip().splitlines()[0]
        raise SchemaError(f"{file.part}/{file.name}: {what}: PostgreSQL refused it: {first}") from e


def application_history(files: list[MigrationFile]) -> list[Statement]:
    return [st for f in files if f.part != "platform" for st in statements(f.text(), f.name)]


def apply_application(conn: psycopg.Connection, files: list[MigrationFile], result: SchemaResult, *,
                      alter_application: bool = False, log: Callable[[str], None] = lambda _: None) -> None:
    """``sql/application`` and ``sql/proposed``, installed or adopted (see the module doc)."""
    app_files = [f for f in files if f.part != "platform"]
    history = application_history(files)
    keep = standing(history)
    catalog = Catalog.read(conn)
    tables = {st.key[1] for i, st in enumerate(history) if i in keep and st.key[0] == "table"}
    result.mode = "adopt" if tables & catalog.tables else "install"
    if result.mode == "install":
        for f in app_files:
            with conn.transaction():
                _run(conn, f, f.text(), "the file")
            for st in statements(f.text(), f.name):
                if st.action in (CREATE, DROP):
                    result.actions.append(Action(f.name, st.label, CREATED if st.action == CREATE else DROPPED))
            log(f"schema: {f.part}/{f.name} applied")
        return
    offset = 0
    for f in app_files:
        mine = statements(f.text(), f.name)
        plan: list[Statement] = []
        reports: list[Action] = []
        for j, st in enumerate(mine):
            i = offset + j
            if i not in keep or st.action == DATA:
                continue
            held = catalog.holds(st) if st.action in (CREATE, ALTER) else None
            if st.action == CREATE:
                if held:
                    reports.append(Action(f.name, st.label, PRESENT, f"as {held}" if held != st.key[-1] else ""))
                else:
                    plan.append(st)
                    reports.append(Action(f.name, st.label, CREATED))
            elif st.action == DROP:
                if not _exists(catalog, st):
                    reports.append(Action(f.name, st.label, ABSENT, "the history removes it"))
                elif alter_application:
                    plan.append(st)
                    reports.append(Action(f.name, st.label, DROPPED))
                else:
                    reports.append(Action(f.name, st.label, KEPT, "the history drops it; --alter-application to drop"))
            elif held:
                reports.append(Action(f.name, st.label, PRESENT))
            elif alter_application:
                plan.append(st)
                reports.append(Action(f.name, st.label, ALTERED))
            else:
                reports.append(Action(f.name, st.label, KEPT, "an application object; --alter-application to change"))
        if any(st.action == CREATE for st in plan):
            # The file's data statements belong with its structural changes (0018 expands the
            # chat blobs into the tables it creates): in their place, in file order.
            planned = set(map(id, plan))
            plan = [st for st in mine if id(st) in planned or st.action == DATA]
            reports += [Action(f.name, st.label, APPLIED) for st in mine if st.action == DATA]
        else:
            reports += [Action(f.name, st.label, SKIPPED, "history: its objects are there")
                        for st in mine if st.action == DATA]
        if plan:
            with conn.transaction():
                for st in plan:
                    _run(conn, f, st.sql, st.label)
        result.actions += reports
        offset += len(mine)
        log(f"schema: {f.part}/{f.name}: " + ", ".join(f"{n} {d}" for d in (CREATED, PRESENT, KEPT, DROPPED, APPLIED)
                                                       if (n := sum(1 for a in reports if a.done == d))))


def _exists(catalog: Catalog, st: Statement) -> bool:
    kind, *names = st.key
    if kind == "constraint":
        return any(c[0] == names[0] and c[1] == names[1] for c in catalog.constraints)
    if kind == "index":
        return any(i[1] == names[0] for i in catalog.indexes)
    if kind == "trigger":
        return any(t[0] == names[0] and t[1] == names[1] for t in catalog.triggers)
    return catalog.holds(Statement(st.file, st.sql, CREATE, st.key, st.table)) is not None


def apply_platform(conn: psycopg.Connection, files: list[MigrationFile], result: SchemaResult, *,
                   log: Callable[[str], None] = lambda _: None) -> None:
    """``sql/platform``: each file once, recorded with its sha256; an edited one is refused."""
    mine = [f for f in files if f.part == "platform"]
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        done = bk.ensure_schema_record(conn)
    drift = [f.name for f in mine if f.name in done and done[f.name] != f.sha256]
    if drift:
        raise SchemaDrift(f"applied platform migration(s) changed on disk: {', '.join(drift)}; "
                          "add a new file instead of editing one")
    for f in mine:
        if f.name in done:
            result.actions.append(Action(f.name, "the file", PRESENT, "recorded in migration.schema_migrations"))
            continue
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
            if bk.schema_file_recorded(conn, f.name):  # another runner applied it meanwhile
                result.actions.append(Action(f.name, "the file", PRESENT))
                continue
            _run(conn, f, without_existing_schemas(conn, f.text()), "the file")
            bk.record_schema_file(conn, f.name, f.sha256)
        result.actions.append(Action(f.name, "the file", APPLIED))
        log(f"schema: platform/{f.name} applied")


def without_existing_schemas(conn: psycopg.Connection, text: str) -> str:
    """The file without its ``CREATE SCHEMA IF NOT EXISTS`` of schemas that exist: a no-op
    PostgreSQL would still refuse a role without CREATE on the database (the platform's role,
    whose schema the owner made)."""
    def drop(match: re.Match) -> str:
        exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [match.group(1)]).fetchone()
        return f"-- {match.group(0)} (present)" if exists else match.group(0)
    return re.sub(r"(?im)^CREATE SCHEMA IF NOT EXISTS ([a-z_][a-z0-9_]*);", drop, text)


def apply_schema(owner: psycopg.Connection, platform: psycopg.Connection | None = None, *,
                 alter_application: bool = False, sql_dir: Path = SQL_DIR,
                 log: Callable[[str], None] = lambda _: None) -> SchemaResult:
    """The whole of ``sql/``: the application's and proposed files on ``owner``, then the
    platform's on ``platform`` (the same connection when there is one role)."""
    files = migration_files(sql_dir)
    result = SchemaResult()
    owner.execute("SELECT pg_advisory_lock(%s)", [_LOCK_KEY])  # one runner at a time, across roles
    try:
        apply_application(owner, files, result, alter_application=alter_application, log=log)
        if platform is not None:
            give_platform_its_schema(owner, platform)
    finally:
        owner.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])
    apply_platform(platform or owner, files, result, log=log)
    return result


def give_platform_its_schema(owner: psycopg.Connection, platform: psycopg.Connection) -> None:
    """The ``migration`` schema, made by the database's owner for the platform's role: the one
    place that role may create objects (it has no CREATE on the database, so no other schema
    and no extension). Owned by the platform's role where the owner may hand it over (a
    superuser, a member of that role); else the owner's, with USAGE and CREATE granted."""
    if owner.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [PLATFORM_SCHEMA]).fetchone():
        return
    role = sql.Identifier(platform.execute("SELECT current_user").fetchone()[0])
    schema = sql.Identifier(PLATFORM_SCHEMA)
    try:
        with owner.transaction():
            owner.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(schema, role))
    except psycopg.errors.InsufficientPrivilege:
        with owner.transaction():
            owner.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
            owner.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA {} TO {}").format(schema, role))
