"""The Dagster UI in a real browser: dagster-webserver serves a test instance in which the
migration ran (``migration-assets migrate --domain all``, then ``readiness``), and headless
Chromium opens what an operator opens: the asset graph, a table with its checks, a table's
columns and where they come from, the lineage of ``funds_ledger_entries``, a domain's cutover
readiness, and a failing check (a row changed behind the migration's back). Screenshots go
to ``test-artifacts/browser/``; ``docs/screenshots/`` gets a copy
when it has none yet or with ``UPDATE_SCREENSHOTS=1``."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest

from migration_assets.specs.registry import all_tables
from migration_assets_tests.conftest import ROOT, create_database, db_url

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.process]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
DOCS = ROOT / "docs" / "screenshots"
LOCATION = "migration_assets"  # workspace.yaml location_name
LINEAGE_TABLE = "funds_ledger_entries" if "funds_ledger_entries" in all_tables() else "seller_offers"
TIMEOUT_MS = 60_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's chromium, installed by the project's setup command when absent."""
    if not Path(CHROMIUM).exists():
        subprocess.run([str(ROOT / "scripts" / "setup_browser.sh")], check=True)
    assert Path(CHROMIUM).exists()
    return CHROMIUM


@pytest.fixture(scope="module")
def migrated_instance(stack_env, pg_server, schema_template, mongo_client, world, tmp_path_factory):
    """A Dagster home, a target database and a Mongo database in which the CLI migrated
    every domain and assessed marketplace readiness; then one request_templates row is
    changed in PostgreSQL and the marketplace verified again (its checksum check fails).
    Yields the environment."""
    from migration_assets.cli.main import main
    from migration_assets.generator.writers import write_mongo

    name = create_database(pg_server, "ma_ui", schema_template)
    write_mongo(mongo_client[name], world.docs, clear=False)
    home = tmp_path_factory.mktemp("dagster_home_ui")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        "MONGODB_URI": stack_env["MONGODB_URI"], "MONGODB_DATABASE": name, "MIGRATION_SOURCE": "live",
        "MONGODUMP_DIR": "", "MIGRATION_PG_URL": db_url(pg_server, name),
        "MIGRATION_PG_ALLOWED_HOSTS": "127.0.0.1,localhost", "DAGSTER_HOME": str(home),
    }
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        for k, v in env.items():
            mp.setenv(k, v)
        assert main(["migrate", "--domain", "all"]) == 0, out.getvalue()
        assert main(["readiness", "--domain", "marketplace", "--runs", "1", "--seed", "1"]) == 0, out.getvalue()
        with psycopg.connect(env["MIGRATION_PG_URL"], autocommit=True) as c:
            c.execute("UPDATE request_templates SET title = title || ' (edited in PostgreSQL)' "
                      "WHERE legacy_object_id = (SELECT min(legacy_object_id) FROM request_templates)")
        assert main(["verify", "--domain", "marketplace"]) == 1, out.getvalue()
    yield env
    with psycopg.connect(pg_server, autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    for coll in world.docs:
        mongo_client[name][coll].delete_many({})


def graphql(base: str, query: str) -> dict:
    req = urllib.request.Request(f"{base}/graphql", data=json.dumps({"query": query}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


@pytest.fixture(scope="module")
def webserver(migrated_instance, stack_env, tmp_path_factory):
    """dagster-webserver on a free port over the test instance (same variables as scripts/env.sh)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("webserver") / "webserver.log"
    env = {**os.environ, **stack_env, **migrated_instance}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        status = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                data = graphql(base, "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
                                     "locationOrLoadError { __typename ... on PythonError { message } } } } } }")
                entries = data["data"]["workspaceOrError"]["locationEntries"]
                status = [(e["name"], e["loadStatus"], e["locationOrLoadError"]) for e in entries]
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    break
            except OSError:
                pass
            time.sleep(1)
        else:
            raise AssertionError(f"webserver not ready: {status}\n{log.read_text()[-3000:]}")
        errors = [s for s in status if s[2] and s[2]["__typename"] == "PythonError"]
        assert not errors, errors  # the code location loads (a definition error shows up here)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def page(chromium, webserver):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1600, "height": 1000})
        pg.set_default_timeout(TIMEOUT_MS)
        pg.base = webserver
        yield pg
        browser.close()
    publish_screenshots()


def publish_screenshots() -> None:
    """docs/screenshots (the runbook's) gets this run's screenshots when asked or missing."""
    DOCS.mkdir(parents=True, exist_ok=True)
    for s in sorted(ARTIFACTS.glob("0*.png")):
        target = DOCS / s.name
        if os.environ.get("UPDATE_SCREENSHOTS") == "1" or not target.exists():
            shutil.copyfile(s, target)


def visit(page, path: str, ready_text: str):
    """Open ``path``, wait until ``ready_text`` shows, dismiss the community dialog."""
    from playwright.sync_api import expect

    page.goto(page.base + path)
    expect(page.get_by_text(ready_text, exact=True).first).to_be_visible()
    dismiss_dialog(page)


def dismiss_dialog(page):
    """The UI asks to 'Join the Dagster community' on a first visit: Skip it."""
    dialog = page.get_by_text("Join the Dagster community")
    with contextlib.suppress(Exception):
        dialog.first.wait_for(state="visible", timeout=2500)
    if dialog.count() and dialog.first.is_visible():
        page.get_by_role("button", name="Skip").click()
        dialog.first.wait_for(state="hidden")


def shot(page, name: str, *, full_page: bool = False) -> Path:
    page.wait_for_timeout(1500)  # let graph layout and live data settle
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 10_000
    return path


def test_asset_graph_shows_every_domain(page):
    from playwright.sync_api import expect

    visit(page, "/asset-groups", "marketplace")
    for group in ("auth", "marketplace", "payments", "points_wallet", "config_ops", "content_social", "chat",
                  "infrastructure"):
        expect(page.get_by_text(group, exact=True).first).to_be_visible()
    expect(page.get_by_text("fetching statuses")).to_have_count(0, timeout=30_000)  # slow under a loaded 2-core machine
    shot(page, "01-asset-graph")

    visit(page, f"/locations/{LOCATION}/asset-groups/marketplace/list", "public / seller_offers")
    for name in ("public / seller_offers", "public / purchase_requests", "mongodb / selleroffers"):
        expect(page.get_by_text(name, exact=True).first).to_be_visible()
    expect(page.get_by_text("Materialized").first).to_be_visible()
    shot(page, "02-marketplace-assets")


def test_table_asset_with_passed_checks(page):
    from playwright.sync_api import expect

    visit(page, "/assets/public/seller_offers?view=checks", "checksum_parity")
    for check in ("checksum_parity", "row_count_parity", "quarantine_empty"):
        expect(page.get_by_text(check, exact=True).first).to_be_visible()
    expect(page.get_by_text("Passed", exact=True).first).to_be_visible()
    expect(page.get_by_text("expected_checksum").first).to_be_visible()
    expect(page.get_by_text("actual_checksum").first).to_be_visible()
    shot(page, "03-seller-offers-checks")


def test_table_asset_columns_trace_back_to_mongo_fields(page, webserver):
    from playwright.sync_api import expect

    visit(page, "/assets/public/seller_offers", "Columns")
    expect(page.get_by_text("from price.amount").first).to_be_visible()  # column schema
    for key in ("rows_loaded", "rows_per_second", "pg_checksum", "quarantine_sample", "column_sources"):
        expect(page.get_by_text(key, exact=True).first).to_be_visible()
    expect(page.get_by_text("migration.public.seller_offers").first).to_be_visible()  # dagster/table_name
    shot(page, "04-seller-offers-overview")
    sources = page.get_by_text("column_sources", exact=True).first
    sources.scroll_into_view_if_needed()
    expect(page.get_by_text("price.amount").first).to_be_visible()
    expect(page.get_by_text("No document of this collection is in the open quarantine.").first).to_be_visible()
    shot(page, "04b-seller-offers-load-metadata")

    # dagster/column_lineage: the OSS UI keeps it for lineage features instead of listing it;
    # the webserver serves it with every Postgres column's Mongo field path.
    data = graphql(webserver, '{ assetNodes(assetKeys: [{path: ["public", "seller_offers"]}]) { '
                              'assetMaterializations(limit: 1) { metadataEntries { label '
                              '... on TableColumnLineageMetadataEntry { lineage { columnName '
                              'columnDeps { assetKey { path } columnName } } } } } } }')
    entries = data["data"]["assetNodes"][0]["assetMaterializations"][0]["metadataEntries"]
    lineage = next(e["lineage"] for e in entries if e["label"] == "dagster/column_lineage")
    deps = {c["columnName"]: [(tuple(d["assetKey"]["path"]), d["columnName"]) for d in c["columnDeps"]] for c in lineage}
    assert deps["price"] == [(("mongodb", "selleroffers"), "price.amount")]
    assert deps["seller_id"] == [(("mongodb", "selleroffers"), "seller")]


def test_lineage_of_funds_ledger_entries_shows_upstream_tables(page):
    from playwright.sync_api import expect

    visit(page, f"/assets/public/{LINEAGE_TABLE}?view=lineage&lineageScope=upstream&lineageDepth=2", LINEAGE_TABLE)
    from migration_assets.specs.registry import all_tables as tables

    loader, spec = tables()[LINEAGE_TABLE]
    upstream = sorted(spec.fk_parents(include_deferred=False) - {LINEAGE_TABLE}) + [loader.collection]
    assert upstream
    for name in upstream:
        expect(page.get_by_text(name, exact=True).first).to_be_visible()
    shot(page, f"05-{LINEAGE_TABLE.replace('_', '-')}-lineage")


def test_a_failing_check_shows_what_differs(page):
    from playwright.sync_api import expect

    visit(page, "/assets/public/request_templates?view=checks", "checksum_parity")
    page.get_by_text("checksum_parity", exact=True).first.click()
    expect(page.get_by_text("Failed", exact=True).first).to_be_visible()
    for key in ("expected_checksum", "actual_checksum", "rows_changed", "differing_rows"):
        expect(page.get_by_text(key, exact=True).first).to_be_visible()
    shot(page, "07-failing-checksum-check")


def test_cutover_readiness_of_a_domain(page):
    from playwright.sync_api import expect

    visit(page, "/assets/migration/cutover_readiness?partition=marketplace", "cutover_readiness")
    expect(page.get_by_text("verdict", exact=True).first).to_be_visible()
    expect(page.get_by_text("GO", exact=True).first).to_be_visible()
    for key in ("flags_to_set", "rollback", "sample_comparison", "check_history"):
        expect(page.get_by_text(key, exact=True).first).to_be_visible()
    shot(page, "06-cutover-readiness-marketplace")
