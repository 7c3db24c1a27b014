"""The least privilege the platform's role needs on the application's database, as the exact
GRANT statements the backend team applies (``migration-assets schema --print-grants``).

The role is neither a superuser nor the owner of the application's tables: it reads and
writes the migrated tables, only reads and appends to the funds ledger (so it can never
switch the ledger's triggers off, nor update or delete an entry), appends to ``id_map``
(an audit trail), settles ``pg_dualwrite_gaps``, uses the enum types, and owns the
``migration`` schema, which the owner creates for it: the only place it may create objects
(no CREATE on the database: no other schema, no extension).
"""

from __future__ import annotations

import re

import psycopg
from psycopg import sql

from migration_assets.specs.kinds import Enum
from migration_assets.specs.registry import all_loaders

READ_WRITE = "SELECT, INSERT, UPDATE, DELETE"
APPEND = "SELECT, INSERT"
ID_MAP, GAPS = "id_map", "pg_dualwrite_gaps"


def table_privileges() -> dict[str, str]:
    """table -> the privileges the platform needs on it."""
    out: dict[str, str] = {}
    for loader in all_loaders():
        for t in loader.table_names:
            out[t] = APPEND if loader.append_only else READ_WRITE
    out[ID_MAP] = APPEND
    out[GAPS] = "SELECT, UPDATE"
    return out


def enum_types() -> list[str]:
    return sorted({c.kind.pg_type for l in all_loaders() for t in l.tables for c in t.columns
                   if isinstance(c.kind, Enum)})


def ident(name: str) -> str:
    """An identifier as SQL: bare when it is a plain lower-case name, quoted otherwise."""
    return name if re.fullmatch(r"[a-z_][a-z0-9_]*", name) else sql.Identifier(name).as_string(None)


def literal(text: str) -> str:
    return sql.Literal(text).as_string(None)


def grant_statements(role: str, database: str) -> list[str]:
    """The statements, in the order to run them (as the database's and tables' owner)."""
    q = ident
    out = [f"GRANT CONNECT, TEMPORARY ON DATABASE {q(database)} TO {q(role)};  -- TEMPORARY: a dry run's shadow tables",
           "CREATE SCHEMA IF NOT EXISTS migration;  -- the only place it creates objects (a superuser may "
           f"rather run CREATE SCHEMA migration AUTHORIZATION {q(role)})",
           # a schema the DBA made for the role (AUTHORIZATION) is the role's: the owner may not grant on it
           f"DO $grant$ BEGIN IF NOT (has_schema_privilege({literal(role)}, 'migration', 'USAGE') "
           f"AND has_schema_privilege({literal(role)}, 'migration', 'CREATE')) THEN "
           f"GRANT USAGE, CREATE ON SCHEMA migration TO {q(role)}; END IF; END $grant$;",
           f"GRANT USAGE ON SCHEMA public TO {q(role)};"]
    out += [f"GRANT USAGE ON TYPE public.{q(t)} TO {q(role)};" for t in enum_types()]
    out += [f"GRANT {privileges} ON public.{q(t)} TO {q(role)};" for t, privileges in sorted(table_privileges().items())]
    return out


def ledger_risks(conn: psycopg.Connection, ledger_tables: list[str]) -> tuple[str, list[str]]:
    """(the connected role, what it holds that could switch a ledger's immutability triggers
    off): superuser, or ownership (membership of the owner role) of a ledger table."""
    role, superuser = conn.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    out = ["superuser"] if superuser else []
    for table in ledger_tables:
        row = conn.execute("SELECT pg_get_userbyid(relowner), pg_has_role(current_user, relowner, 'MEMBER') "
                           "FROM pg_class WHERE oid = to_regclass(%s)", [f"public.{table}"]).fetchone()
        if row and row[1] and not superuser:
            out.append(f"ownership of {table} (as {row[0]})")
    return role, out


def database_risks(conn: psycopg.Connection) -> list[str]:
    """What lets the role create objects outside its ``migration`` schema: CREATE on the
    database, or owning it (schemas of its own, and extensions: ``CREATE EXTENSION hstore``
    puts 60 functions into ``public``)."""
    superuser, create, owner = conn.execute(
        "SELECT rolsuper, has_database_privilege(current_database(), 'CREATE'), "
        "pg_has_role(current_user, (SELECT datdba FROM pg_database WHERE datname = current_database()), 'MEMBER') "
        "FROM pg_roles WHERE rolname = current_user").fetchone()
    if superuser:
        return []  # said as superuser already
    if owner:
        return ["ownership of the database"]
    return ["CREATE on the database"] if create else []
