"""Bench databases on the local server: one fresh migrated database per measurement."""

from __future__ import annotations

import os
import uuid

import psycopg

SERVER = os.environ.get("BENCH_PG_SERVER", "postgresql://postgres@127.0.0.1:54329/postgres")
TEMPLATE = "bench_template"


def url(name: str) -> str:
    return SERVER.rsplit("/", 1)[0] + "/" + name


def ensure_template() -> None:
    """A database with sql/ applied, cloned per measurement (CREATE DATABASE ... TEMPLATE)."""
    from migration_assets.target.schema import apply_schema

    with psycopg.connect(SERVER, autocommit=True) as c:
        if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", [TEMPLATE]).fetchone():
            c.execute(f"CREATE DATABASE {TEMPLATE}")
    with psycopg.connect(url(TEMPLATE), autocommit=True) as c:
        apply_schema(c)  # an existing template adopts its schema and gets the newer platform files


def refresh_template() -> None:
    with psycopg.connect(SERVER, autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
    ensure_template()


def create(tag: str, *, template: str | None = TEMPLATE) -> tuple[str, str]:
    """A fresh database cloned from ``template`` (None: an empty one, for dlt)."""
    name = f"bench_{tag}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(SERVER, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    return name, url(name)


def drop(name: str) -> None:
    with psycopg.connect(SERVER, autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
