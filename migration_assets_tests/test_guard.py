"""Target-host guard: writes go only to allowlisted hosts, and any other target is refused
before a connection is opened. A TCP listener on 127.0.0.2 stands in for a production
server: it counts every connection attempt, and must see none."""

from __future__ import annotations

import ast
import socket
import threading
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from migration_assets.factory.assets import build_loader_asset
from migration_assets.factory.resources import MongoSourceResource, PostgresTargetResource
from migration_assets.specs.registry import loader_for_table
from migration_assets.target import guard as tg
from migration_assets_tests.helpers import run_job

ALLOW = ["127.0.0.1", "localhost", "::1"]


class Listener:
    """Accepts and counts TCP connections on 127.0.0.2 (closing each at once)."""

    def __init__(self, host: str = "127.0.0.2"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.host, self.port = self.sock.getsockname()
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def listener():
    lst = Listener()
    yield lst
    lst.close()


@pytest.mark.integration
def test_listener_sees_a_real_connection_attempt(listener):
    """Control: the listener does count a connection, so zero below means none was tried."""
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"postgresql://postgres@{listener.host}:{listener.port}/x", connect_timeout=2)
    assert listener.accepted >= 1


@pytest.mark.parametrize("url, why", [
    ("postgresql://postgres:pw@10.20.30.40:5432/prod", "host '10.20.30.40' is not in"),
    ("postgresql://postgres:pw@db.prod.example.com/prod", "host 'db.prod.example.com' is not in"),
    # libpq lets ?host= override the authority: the guard must read it the same way.
    ("postgresql://postgres:pw@127.0.0.1:5432/prod?host=10.0.0.9", "host '10.0.0.9' is not in"),
    # hostaddr skips name resolution: an allowlisted name with a foreign address is refused.
    ("postgresql://postgres:pw@localhost:5432/prod?hostaddr=10.0.0.9", "hostaddr '10.0.0.9' is not in"),
    ("postgresql://postgres:pw@127.0.0.1:1,10.0.0.9:2/prod", "host '10.0.0.9' is not in"),
    ("host=10.0.0.9 dbname=prod password=pw", "host '10.0.0.9' is not in"),
    ("postgresql:///prod", "no host in the URL"),
    ("postgresql://postgres:pw@127.0.0.1/prod?service=prod", "service"),
])
@pytest.mark.unit
def test_refusals_name_the_reason_without_the_password(url, why):
    with pytest.raises(tg.TargetRefused) as err:
        tg.check_target_allowed(url, ALLOW)
    assert why in str(err.value)
    assert "pw" not in str(err.value).replace("password=***", "")


@pytest.mark.unit
def test_environment_defaults_are_checked_too(monkeypatch):
    # libpq fills a missing hostaddr from PGHOSTADDR: it would reach 10.0.0.9 whatever the URL says.
    monkeypatch.setenv("PGHOSTADDR", "10.0.0.9")
    with pytest.raises(tg.TargetRefused, match="hostaddr '10.0.0.9'"):
        tg.check_target_allowed("postgresql://postgres@127.0.0.1/db", ALLOW)
    monkeypatch.delenv("PGHOSTADDR")
    monkeypatch.setenv("PGSERVICE", "prod")
    with pytest.raises(tg.TargetRefused, match="service"):
        tg.check_target_allowed("postgresql://postgres@127.0.0.1/db", ALLOW)


@pytest.mark.unit
def test_allowlisted_hosts_and_networks_pass():
    assert tg.check_target_allowed("postgresql://u:p@127.0.0.1:5432/db", ALLOW) == "127.0.0.1"
    assert tg.check_target_allowed("postgresql://u:p@[::1]:5432/db", ALLOW) == "::1"
    assert tg.check_target_allowed("postgresql://u@10.1.2.3/db", ["10.1.0.0/16"]) == "10.1.2.3"
    with pytest.raises(tg.TargetRefused):
        tg.check_target_allowed("postgresql://u@10.2.0.1/db", ["10.1.0.0/16"])


@pytest.mark.unit
def test_the_shared_allowlist_rule_reads_as_before():
    """The rule moved to allowlist.py: case-insensitive, ``*`` allows any host, a name never
    matches a CIDR, an entry starting with '/' is a socket directory, not a network."""
    assert tg.check_target_allowed("postgresql://u@DB.Internal/db", [" db.INTERNAL "]) == "DB.Internal"
    assert tg.check_target_allowed("postgresql://u@10.9.9.9,db.prod/db", ["*"]) == "10.9.9.9,db.prod"
    for url, allowed in [("postgresql://u@db.prod/db", ["0.0.0.0/0"]), ("postgresql://u@10.0.0.1/db", ["/tmp"])]:
        with pytest.raises(tg.TargetRefused):
            tg.check_target_allowed(url, allowed)


@pytest.mark.integration
@pytest.mark.parametrize("shape", ["authority", "query_host_override"])
def test_dagster_run_refuses_before_connecting(shape, listener, stack_env, live_source_db, target_conn):
    """A real Dagster run pointed at a non-allowlisted host fails with the reason, and the
    host never sees a connection (nor does anything reach the allowlisted target)."""
    url = {
        "authority": f"postgresql://postgres:s3cret-pw@{listener.host}:{listener.port}/migration",
        # Looks like localhost, but libpq would connect to the ?host= value.
        "query_host_override": f"postgresql://postgres:s3cret-pw@127.0.0.1:{listener.port}/migration"
                               f"?host={listener.host}",
    }[shape]
    loader = loader_for_table("users")
    result = dg.materialize(
        [build_loader_asset(loader)],
        resources={"mongo": MongoSourceResource(uri=stack_env["MONGODB_URI"], database=live_source_db),
                   "postgres": PostgresTargetResource(url=url, allowed_hosts="127.0.0.1,localhost")},
        raise_on_error=False,
    )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    text = failure.message + "".join(c.message for c in _causes(failure))
    assert "TargetRefused" in failure.cls_name or "TargetRefused" in text
    assert "refusing to write" in text and "'127.0.0.2' is not in MIGRATION_PG_ALLOWED_HOSTS" in text
    assert "s3cret-pw" not in text
    assert listener.accepted == 0
    assert target_conn.execute("SELECT count(*) FROM migration.load_checkpoints").fetchone()[0] == 0


@pytest.mark.integration
def test_job_through_env_vars_refuses(listener, migration_env, definitions, live_source_db):
    """The deployed configuration path (EnvVar-bound resources, the migrate job)."""
    migration_env(mode="live", database=live_source_db,
                  url=f"postgresql://postgres:s3cret-pw@{listener.host}:{listener.port}/migration")
    result = run_job(definitions, "migrate_auth", partition_key="auth")
    assert not result.success
    messages = [e.message or "" for e in result.all_events]
    errors = [e.step_failure_data.error for e in result.get_step_failure_events()]
    assert errors and all(any("refusing to write" in c.message for c in _causes(err)) for err in errors)
    assert not any("s3cret-pw" in m for m in messages)
    assert listener.accepted == 0


@pytest.mark.unit
def test_only_the_guard_opens_postgresql_connections():
    """Every connection goes through the guard: no other module calls psycopg.connect."""
    root = Path(__file__).resolve().parents[1] / "migration_assets"
    offenders = []
    for path in root.rglob("*.py"):
        if path == root / "target" / "guard.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("connect", "AsyncConnection") and \
                    isinstance(node.value, ast.Name) and node.value.id == "psycopg":
                offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert offenders == []


def _causes(error):
    while error is not None:
        yield error
        error = error.cause
