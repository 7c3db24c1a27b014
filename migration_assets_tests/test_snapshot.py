"""A snapshot of the definitions: every asset (group, kinds, pools), every check (blocking or
not), every job (its steps, counting a ranged load's range step once), schedule, sensor and
pool. A change to any of them shows here as a diff to review; accept it with
``UPDATE_SNAPSHOT=1 python -m pytest migration_assets_tests/test_snapshot.py``."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

pytestmark = pytest.mark.definitions

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.txt"


def job_ops(job: dg.JobDefinition) -> list[dg.OpDefinition]:
    return [job.graph.get_node(h).definition for h in job.graph.iterate_node_handles()
            if isinstance(job.graph.get_node(h).definition, dg.OpDefinition)]


def describe(defs: dg.Definitions) -> list[str]:
    graph = defs.resolve_asset_graph()
    lines = []
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        kind = "external" if not node.is_materializable else "asset"
        pools = sorted(node.pools) if node.pools else []
        lines.append(f"{kind} {key.to_user_string()} group={node.group_name} kinds={','.join(sorted(node.kinds))}"
                     + (f" pools={','.join(pools)}" if pools else "")
                     + f" deps={','.join(sorted(k.to_user_string() for k in node.parent_keys)) or '-'}")
    for key in sorted(graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        spec = graph.get_check_spec(key)
        lines.append(f"check {key.asset_key.to_user_string()}:{key.name} blocking={spec.blocking}")
    all_pools = set()
    for job in sorted(defs.resolve_all_job_defs(), key=lambda j: j.name):
        if job.name.startswith("__"):
            continue
        ops = job_ops(job)
        pools = sorted({op.pool for op in ops if op.pool})
        all_pools |= set(pools)
        lines.append(f"job {job.name} steps={len(ops)} pools={len(pools)}")
    lines += [f"schedule {s.name} job={s.job_name} cron={s.cron_schedule}" for s in sorted(defs.schedules or [],
                                                                                           key=lambda s: s.name)]
    lines += [f"sensor {s.name}" for s in sorted(defs.sensors or [], key=lambda s: s.name)]
    lines += [f"pool {p}" for p in sorted(all_pools)]
    return lines


def test_definitions_match_the_snapshot(definitions):
    now = "\n".join(describe(definitions)) + "\n"
    if os.environ.get("UPDATE_SNAPSHOT") == "1" or not SNAPSHOT.exists():
        SNAPSHOT.write_text(now)
    assert now == SNAPSHOT.read_text(), "the definitions changed; review the diff, then UPDATE_SNAPSHOT=1"
