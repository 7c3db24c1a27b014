"""The least privilege the platform's role needs on the application's database, as the exact
GRANT statements the backend team applies (``migration-assets schema --print-grants``).

The role is neither a superuser nor the owner of the application's tables: it reads and
writes the migrated tables, only reads and appends to the funds ledger (so it can never
switch the ledger's triggers off, nor update or delete an entry), appends to ``id_map``
(an audit trail), settles ``pg_dualwrite_gaps``, uses the enum types, and owns the
``migration`` schema, which it creates itself.
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


def grant_statements(role: str, database: str) -> list[str]:
    """The statements, in the order to run them (as the database's and tables' owner)."""
    q = ident
    out = [f"GRANT CONNECT, TEMPORARY, CREATE ON DATABASE {q(database)} TO {q(role)};  -- CREATE: its own schema",
           f"GRANT USAGE ON SCHEMA public TO {q(role)};"]
    out += [f"GRANT USAGE ON TYPE public.{q(t)} TO {q(role)};" for t in enum_types()]
    out += [f"GRANT {privileges} ON public.{q(t)} TO {q(role)};" for t, privileges in sorted(table_privileges().items())]
    return out


def role_risks(conn: psycopg.Connection, ledger_tables: list[str]) -> tuple[str, list[str]]:
    """(the connected role, what it holds that a migration tool should not): a superuser, or
    an owner (or a member of the owner role) of a ledger table, can disable its
    immutability triggers."""
    role, superuser = conn.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    out = ["superuser"] if superuser else []
    for table in ledger_tables:
        row = conn.execute("SELECT pg_get_userbyid(relowner), pg_has_role(current_user, relowner, 'MEMBER') "
                           "FROM pg_class WHERE oid = to_regclass(%s)", [f"public.{table}"]).fetchone()
        if row and row[1] and not superuser:
            out.append(f"ownership of {table} (as {row[0]})")
    return role, out
