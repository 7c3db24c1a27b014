"""Mongo or PostgreSQL unreachable when a run starts: a clear error naming the endpoint
(without its password), raised before anything is written."""

from __future__ import annotations

import socket

import dagster as dg
import pytest

from migration_assets.factory.assets import build_loader_asset
from migration_assets.factory.resources import MongoSourceResource, PostgresTargetResource
from migration_assets.redaction import redact
from migration_assets.source.documents import SourceUnavailable
from migration_assets.source.live import LiveSource
from migration_assets.specs.registry import loader_for_table
from migration_assets.target import guard as tg

pytestmark = pytest.mark.integration
SECRET = "s3cret-pw%21"  # percent-encoded '!' too: neither form may leak


def closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_users(mongo: MongoSourceResource, postgres: PostgresTargetResource):
    loader = loader_for_table("users")
    return dg.materialize([build_loader_asset(loader)],
                          resources={"mongo": mongo, "postgres": postgres}, raise_on_error=False)


def failure_texts(result) -> list[str]:
    out = []
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        while error is not None:
            out.append(error.message)
            error = error.cause
    return out


def all_event_text(result) -> str:
    parts = []
    for e in result.all_events:
        parts.append(e.message or "")
        if e.is_step_failure:
            parts += failure_texts_of(e.step_failure_data.error)
    return "\n".join(parts)


def failure_texts_of(error) -> list[str]:
    out = []
    while error is not None:
        out.append(error.message + "".join(error.stack))
        error = error.cause
    return out


def target_untouched(conn) -> dict[str, int]:
    return {
        "checkpoints": conn.execute("SELECT count(*) FROM migration.load_checkpoints").fetchone()[0],
        "quarantine": conn.execute("SELECT count(*) FROM migration.quarantine").fetchone()[0],
        "users": conn.execute("SELECT count(*) FROM public.users").fetchone()[0],
        "id_map": conn.execute("SELECT count(*) FROM public.id_map").fetchone()[0],
    }


def test_mongo_unreachable(target_url, target_conn):
    port = closed_port()
    uri = f"mongodb://migrator:{SECRET}@127.0.0.1:{port}/?directConnection=true&authSource=admin"
    result = run_users(MongoSourceResource(uri=uri, database="marketplace"),
                       PostgresTargetResource(url=target_url, allowed_hosts="127.0.0.1"))
    assert not result.success
    texts = failure_texts(result)
    head = next(t for t in texts if "MongoDB at" in t)
    assert f"MongoDB at mongodb://migrator:***@127.0.0.1:{port}/" in head and "is unreachable" in head
    assert "Connection refused" in head  # the driver's reason, kept
    everything = all_event_text(result)
    assert SECRET not in everything and "s3cret-pw!" not in everything
    assert target_untouched(target_conn) == {"checkpoints": 0, "quarantine": 0, "users": 0, "id_map": 0}


def test_postgres_unreachable(stack_env, live_source_db):
    port = closed_port()
    url = f"postgresql://postgres:{SECRET}@127.0.0.1:{port}/migration"
    result = run_users(MongoSourceResource(uri=stack_env["MONGODB_URI"], database=live_source_db),
                       PostgresTargetResource(url=url, allowed_hosts="127.0.0.1"))
    assert not result.success
    head = next(t for t in failure_texts(result) if "PostgreSQL at" in t)
    assert f"PostgreSQL at postgresql://postgres:***@127.0.0.1:{port}/migration is unreachable" in head
    assert "refused" in head.lower()
    everything = all_event_text(result)
    assert SECRET not in everything and "s3cret-pw!" not in everything


def test_bad_uris_are_clear_errors_without_secrets():
    with pytest.raises(SourceUnavailable) as err:
        LiveSource(f"mongodb://u:{SECRET}@127.0.0.1:99999/", "x")
    assert SECRET not in str(err.value) and "127.0.0.1:99999" in str(err.value)
    with pytest.raises(tg.TargetUnavailable) as err2:
        tg.connect(f"postgresql://postgres:{SECRET}@127.0.0.1:{closed_port()}/x?connect_timeout=2", ["127.0.0.1"])
    assert SECRET not in str(err2.value) and "postgres:***@127.0.0.1" in str(err2.value)
    # Secrets in query options are masked as well.
    assert redact("postgresql://h/db?password=hunter2&sslmode=require") == \
        "postgresql://h/db?password=***&sslmode=require"
