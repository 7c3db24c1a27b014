"""Sensors (both poll: not every Mongo-compatible server has change streams):

* ``dualwrite_gap_sensor`` watches ``pg_dualwrite_gaps`` and requests a ``resync_rows`` run
  for exactly the rows of the open gaps. The run resolves each gap in the same transaction
  that re-writes its row, so a gap is never marked resolved unless its re-sync succeeded;
  one it could not apply stays open with ``attempts`` + 1 and the reason.
* ``source_change_sensor`` compares each collection with the mark of its last successful
  load (highest ``_id``, latest ``updatedAt``) and requests a catch-up run of the domain's
  ``migrate_<domain>`` job (partition = domain). The mark advances only once that run
  succeeded.

Run keys name exactly what a request covers (the gaps and their attempt counts; the
domain and the marks), so a tick never requests the same thing twice; a failed run is
retried under a new key a bounded number of times. Cursors keep the marks and what is
pending.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict

import dagster as dg
import psycopg

from migration_assets.cutover.watermarks import Mark, changes_since, loaded_mark, marks_key
from migration_assets.defs.jobs import migrate_jobs, resync_rows_job
from migration_assets.factory.resources import MongoSourceResource, PostgresTargetResource
from migration_assets.orchestration.records import runs_tagged, unfinished_runs_of
from migration_assets.source.documents import SourceUnavailable
from migration_assets.specs.registry import DOMAINS, loaders_in_domain
from migration_assets.target.gaps import open_gaps
from migration_assets.target.guard import TargetRefused, TargetUnavailable

MAX_GAP_ATTEMPTS = 10  # a gap tried this often (by the application and re-syncs) is left to people
MAX_GAPS_PER_RUN = 200
MAX_RUN_RETRIES = 3  # runs per exact request (a failed run is retried under a new key)
PENDING_TIMEOUT = dt.timedelta(minutes=15)  # a requested run that never appeared is requested again

RUN_KEY_TAG = "dagster/run_key"
# A tick that cannot read a server (or a target without the schema yet) skips, saying why.
UNREACHABLE = (SourceUnavailable, TargetUnavailable, TargetRefused, psycopg.errors.UndefinedTable)


def run_state(instance: dg.DagsterInstance, run_key: str) -> str:
    """``absent`` / ``running`` / ``success`` / ``failed`` of the runs launched for a run key."""
    runs = runs_tagged(instance, RUN_KEY_TAG, run_key, limit=10)
    if not runs:
        return "absent"
    if any(r.status == dg.DagsterRunStatus.SUCCESS for r in runs):
        return "success"
    if any(not r.is_finished for r in runs):
        return "running"
    return "failed"


# --- dual-write gaps ------------------------------------------------------------------------

def gaps_in_flight(instance: dg.DagsterInstance) -> set[int]:
    """Gap ids of ``resync_rows`` runs that have not finished yet."""
    out: set[int] = set()
    for run in unfinished_runs_of(instance, resync_rows_job.name):
        config = (run.run_config or {}).get("ops", {}).get("resync_rows", {}).get("config", {})
        out.update(int(i) for i in config.get("gap_ids", []))
    return out


def gap_request(gaps, attempt: int, digest: str) -> dg.RunRequest:
    rows: dict[str, list[str]] = defaultdict(list)
    for g in gaps:
        if g.legacy_id and g.legacy_id not in rows[g.entity]:
            rows[g.entity].append(g.legacy_id)
    return dg.RunRequest(
        run_key=f"gaps-{digest}-{attempt}",
        run_config={"ops": {"resync_rows": {"config": {
            "rows": [{"entity": e, "legacy_ids": ids} for e, ids in sorted(rows.items())],
            "gap_ids": [g.id for g in gaps],
        }}}},
        tags={"gap_batch": digest, "gap_count": str(len(gaps))},
    )


@dg.sensor(name="dualwrite_gap_sensor", job=resync_rows_job, minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Open dual-write gaps -> a resync_rows run for exactly their rows; the run marks "
                       "each gap resolved in the transaction that re-syncs its row.")
def dualwrite_gap_sensor(context: dg.SensorEvaluationContext, postgres: PostgresTargetResource):
    try:
        with postgres.connect("dualwrite_gap_sensor") as conn:
            gaps = open_gaps(conn, max_attempts=MAX_GAP_ATTEMPTS, limit=5 * MAX_GAPS_PER_RUN)
    except UNREACHABLE as e:
        return dg.SensorResult(skip_reason=f"cannot read pg_dualwrite_gaps: {e}", cursor=context.cursor)
    busy = gaps_in_flight(context.instance)
    todo = [g for g in gaps if g.id not in busy][:MAX_GAPS_PER_RUN]
    cursor = json.loads(context.cursor) if context.cursor else {}
    if not todo:
        why = f"{len(gaps)} open gap(s), all in a running re-sync" if gaps else "no open dual-write gaps"
        return dg.SensorResult(skip_reason=why, cursor=context.cursor)
    # The batch is the gaps and their attempt counts: a re-sync that could not apply a gap
    # counts an attempt, so trying it again is a new batch; the same batch is never
    # requested twice, except after a failed run (a new key, at most MAX_RUN_RETRIES).
    digest = hashlib.sha1("|".join(f"{g.id}:{g.attempts}" for g in todo).encode()).hexdigest()[:16]
    tried = runs_tagged(context.instance, "gap_batch", digest)
    if any(r.status == dg.DagsterRunStatus.SUCCESS for r in tried) or len(tried) >= MAX_RUN_RETRIES:
        return dg.SensorResult(
            skip_reason=f"gaps {[g.id for g in todo]} were re-synced {len(tried)} time(s) without closing; "
                        "see the resync_rows runs", cursor=context.cursor)
    cursor.update({"max_gap_id": max(g.id for g in gaps), "last_batch": digest, "last_gap_ids": [g.id for g in todo]})
    return dg.SensorResult(run_requests=[gap_request(todo, len(tried), digest)], cursor=json.dumps(cursor))


# --- source changes -------------------------------------------------------------------------

def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dg.sensor(name="source_change_sensor", jobs=list(migrate_jobs), minimum_interval_seconds=120,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="New (_id above the high-water mark) or updated (updatedAt after the watermark) "
                       "Mongo documents since the last successful load -> a catch-up migrate_<domain> run.")
def source_change_sensor(context: dg.SensorEvaluationContext, mongo: MongoSourceResource,
                         postgres: PostgresTargetResource):
    cursor = json.loads(context.cursor) if context.cursor else {}
    marks: dict = cursor.setdefault("marks", {})
    pending: dict = cursor.setdefault("pending", {})
    requests, notes = [], []
    try:
        _detect(context, mongo, postgres, marks, pending, requests, notes)
    except UNREACHABLE as e:
        return dg.SensorResult(skip_reason=f"cannot compare the source with the last loads: {e}",
                               cursor=context.cursor)
    if not requests:
        return dg.SensorResult(skip_reason="; ".join(notes) or "no source changes since the last loads",
                               cursor=json.dumps(cursor))
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))


def _detect(context, mongo, postgres, marks: dict, pending: dict, requests: list, notes: list) -> None:
    """One tick of ``source_change_sensor``: fills ``requests`` and updates the cursor parts."""
    with mongo.session() as source, postgres.connect("source_change_sensor") as conn:
        for domain in DOMAINS:
            loaders = loaders_in_domain(domain)
            p = pending.get(domain)
            if p:
                state = run_state(context.instance, p["run_key"])
                if state == "running" or (state == "absent" and _now() - dt.datetime.fromisoformat(p["at"]) < PENDING_TIMEOUT):
                    notes.append(f"{domain}: catch-up {p['run_key']} not finished")
                    continue
                if state == "success":
                    marks.update(p["marks"])
                del pending[domain]
            new: dict[str, Mark] = {}
            changed = []
            for loader in loaders:
                mark = Mark.from_json(marks.get(loader.collection)) or loaded_mark(conn, loader, source)
                if mark is None:
                    continue  # never loaded completely: a first load, not a catch-up
                marks.setdefault(loader.collection, mark.to_json())
                ch = changes_since(source, loader, mark)
                new[loader.collection] = ch.mark or mark
                if ch.any:
                    changed.append(ch)
            if not changed:
                continue
            key = f"catchup-{domain}-{marks_key(new)}"
            tried = runs_tagged(context.instance, "catchup_marks", key)
            if len(tried) >= MAX_RUN_RETRIES:
                notes.append(f"{domain}: catch-up {key} failed {len(tried)} times; not requested again")
                continue
            run_key = key if not tried else f"{key}-retry{len(tried)}"
            what = ", ".join(f"{c.collection}: {c.new_docs} new, {c.updated_docs} updated" for c in changed)
            requests.append(dg.RunRequest(
                run_key=run_key, job_name=f"migrate_{domain}", partition_key=domain,
                tags={"catchup_marks": key, "catchup_changes": what[:1000]},
            ))
            pending[domain] = {"run_key": run_key, "marks": {k: v.to_json() for k, v in new.items()},
                               "at": _now().isoformat()}
            notes.append(f"{domain}: {what}")


defs = dg.Definitions(sensors=[dualwrite_gap_sensor, source_change_sensor])
