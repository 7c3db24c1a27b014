"""Dagster resources: the Mongo source and the PostgreSQL target, configured by environment
variables (bound with ``dg.EnvVar`` in ``defs/environment.py``)."""


import contextlib
from collections.abc import Iterator

import dagster as dg
import psycopg
import pymongo.database

from migration_assets.allowlist import parse_allowlist
from migration_assets.redaction import redact
from migration_assets.source.documents import Source
from migration_assets.source.dump import DumpSource
from migration_assets.source.live import LiveSource
from migration_assets.source.mongo_target import open_mongo_target
from migration_assets.target.guard import connect


class BadConfigValue(ValueError):
    """A setting (an environment variable bound to a resource) has a value the platform cannot use."""


class MongoSourceResource(dg.ConfigurableResource):
    """The source: a live server (``mode='live'``, through ``uri``) or a mongodump directory
    (``mode='dump'``, ``dump_dir``). Same transforms and checks either way. ``allowed_hosts``:
    the hosts the reverse sync may write to (``open_target``)."""

    uri: str
    database: str = "marketplace"
    mode: str = "live"
    dump_dir: str = ""
    # Processes hashing the source side of a checksum (large collections without a context).
    checksum_workers: int = 1
    # Hosts (or CIDRs, ``*`` = any; comma separated) the reverse sync may write to.
    allowed_hosts: str = "127.0.0.1,localhost,::1"

    @property
    def allowlist(self) -> list[str]:
        return parse_allowlist(self.allowed_hosts)

    def open(self) -> Source:
        if self.mode == "dump":
            if not self.dump_dir:
                raise BadConfigValue("MIGRATION_SOURCE=dump needs MONGODUMP_DIR")
            source: Source = DumpSource(self.dump_dir, self.database)
        elif self.mode == "live":
            source = LiveSource(self.uri, self.database)
        else:
            raise BadConfigValue(f"MIGRATION_SOURCE must be 'live' or 'dump', not {self.mode!r}")
        source.ping()
        return source

    @contextlib.contextmanager
    def session(self) -> Iterator[Source]:
        source = self.open()
        try:
            yield source
        finally:
            source.close()

    def open_target(self) -> pymongo.database.Database:
        """The server as the reverse sync's write target, refused unless its hosts are in
        ``allowed_hosts`` (checked before any DNS lookup); close it with ``db.client.close()``."""
        if self.mode == "dump":
            raise BadConfigValue("reverse sync writes to a live Mongo server: MIGRATION_SOURCE=dump has none")
        return open_mongo_target(self.uri, self.database, self.allowlist)


class PostgresTargetResource(dg.ConfigurableResource):
    """The migration target. Only hosts in ``allowed_hosts`` (comma separated) are written to."""

    url: str
    allowed_hosts: str = "127.0.0.1,localhost,::1"

    @property
    def allowlist(self) -> list[str]:
        return [h for h in self.allowed_hosts.split(",") if h.strip()]

    @property
    def redacted_url(self) -> str:
        return redact(self.url)

    @property
    def database_name(self) -> str:
        from urllib.parse import urlsplit

        return urlsplit(self.url).path.lstrip("/") or "postgres"

    @contextlib.contextmanager
    def connect(self, application_name: str = "migration_assets") -> Iterator[psycopg.Connection]:
        conn = connect(self.url, self.allowlist, application_name=application_name)
        try:
            yield conn
        finally:
            conn.close()
