"""Definitions load; assets follow the house rules; pure modules stay free of Dagster."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import dagster as dg
import pytest

from migration_assets.specs.registry import DOMAINS, all_loaders

pytestmark = pytest.mark.definitions

ROOT = Path(__file__).resolve().parents[1]


def test_validate_loadable(definitions):
    dg.Definitions.validate_loadable(definitions)


def test_dg_check_defs():
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "dg"), "check", "defs"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_table_assets_follow_conventions(definitions):
    graph = definitions.resolve_asset_graph()
    tables = {t.table: l for l in all_loaders() for t in l.tables}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if key.path[0] == "public" and len(key.path) == 2 and key.path[1] in tables:
            loader = tables[key.path[1]]
            assert node.group_name == loader.domain in DOMAINS
            assert node.kinds == {"mongodb", "postgres"}
            assert "dagster/column_schema" in node.metadata


def test_every_table_has_count_and_checksum_checks(definitions):
    graph = definitions.resolve_asset_graph()
    checks = {(k.asset_key.path[-1], k.name) for k in graph.asset_check_keys}
    for loader in all_loaders():
        for t in loader.tables:
            assert (t.table, "row_count_parity") in checks
            assert (t.table, "checksum_parity") in checks


def test_domain_jobs_exist(definitions):
    for d in DOMAINS:
        assert definitions.resolve_job_def(f"migrate_{d}")
        assert definitions.resolve_job_def(f"verify_{d}")


def test_no_deprecated_dagster_apis():
    # Assembled from pieces so this file does not itself contain the names it bans.
    names = ["AutoMaterialize" + "Policy", "Source" + "Asset\\(", "compute" + "_kind=", "non_argument" + "_deps",
             "load" + "_defs\\(", "project" + "_root=", "build_last_update" + "_freshness_checks", "get_job" + "_def\\("]
    banned = re.compile("|".join(names))
    offenders = []
    for path in list((ROOT / "migration_assets").rglob("*.py")) + list((ROOT / "migration_assets_tests").rglob("*.py")):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if banned.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{i}")
    assert offenders == []


def test_no_environment_reads_in_defs():
    offenders = [str(p) for p in (ROOT / "migration_assets" / "defs").rglob("*.py")
                 if re.search(r"os\.(getenv|environ)", p.read_text())]
    assert offenders == []
