"""Dagster resources: the Mongo source and the PostgreSQL target, configured by environment
variables (bound with ``dg.EnvVar`` in ``defs/resources.py``)."""


import contextlib
from collections.abc import Iterator

import dagster as dg
import psycopg

from migration_assets import target as tg
from migration_assets.source import DumpSource, LiveSource


class MongoSourceResource(dg.ConfigurableResource):
    """The source: a live server (``mode='live'``, through ``uri``) or a mongodump directory
    (``mode='dump'``, ``dump_dir``). Same transforms and checks either way."""

    uri: str
    database: str = "marketplace"
    mode: str = "live"
    dump_dir: str = ""

    def open(self) -> LiveSource | DumpSource:
        if self.mode == "dump":
            if not self.dump_dir:
                raise ValueError("MIGRATION_SOURCE=dump needs MONGODUMP_DIR")
            source: LiveSource | DumpSource = DumpSource(self.dump_dir, self.database)
        elif self.mode == "live":
            source = LiveSource(self.uri, self.database)
        else:
            raise ValueError(f"MIGRATION_SOURCE must be 'live' or 'dump', not {self.mode!r}")
        source.ping()
        return source

    @contextlib.contextmanager
    def session(self) -> Iterator[LiveSource | DumpSource]:
        source = self.open()
        try:
            yield source
        finally:
            source.close()


class PostgresTargetResource(dg.ConfigurableResource):
    """The migration target. Only hosts in ``allowed_hosts`` (comma separated) are written to."""

    url: str
    allowed_hosts: str = "127.0.0.1,localhost,::1"

    @property
    def allowlist(self) -> list[str]:
        return [h for h in self.allowed_hosts.split(",") if h.strip()]

    @property
    def redacted_url(self) -> str:
        return tg.redact_url(self.url)

    @property
    def database_name(self) -> str:
        from urllib.parse import urlsplit

        return urlsplit(self.url).path.lstrip("/") or "postgres"

    @contextlib.contextmanager
    def connect(self, application_name: str = "migration_assets") -> Iterator[psycopg.Connection]:
        conn = tg.connect(self.url, self.allowlist, application_name=application_name)
        try:
            yield conn
        finally:
            conn.close()
