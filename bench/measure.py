"""One measurement, run in its own process so that its peak RSS is its own:

    python -m bench.measure {ceiling|platform|naive|dlt|parents} DATASET N DATABASE_URL [LIMIT]

prints one JSON object. The caller (bench/run.py) creates and drops the databases.

* ceiling: the rows the platform writes, built in memory first (not timed), then binary
  COPY into the same tables (same constraints, indexes and FKs), one COPY per table;
* platform: ``run_loader`` for each loader (+ deferred remaps), then ``verify_loader``
  (row counts and checksums, both sides) for each: what the Dagster job's assets and
  checks call, without the orchestration;
* naive: decode + the reference transform + one ``INSERT`` per row (one transaction);
* dlt: ``dlt[postgres]`` loading the decoded documents (its own schema inference and
  nested-table normalization) into the same server;
* parents: loads a dataset's parent collections (setup for the ledger, not measured).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import bson
import psycopg

from bench.datasets import DATABASE, DATASETS, dump_path
from migration_assets.factory.executors import IN_PROCESS, multiprocess
from migration_assets.factory.naming import (
    CHECKSUM,
    CONFORMS,
    FIELDS,
    QUARANTINE,
    REFERENCE_PARITY,
    ROW_COUNT,
    column_key,
    table_key,
)
from migration_assets.source.dump import DumpSource
from migration_assets.specs.ids import new_id
from migration_assets.specs.kinds import LegacyRef
from migration_assets.specs.model import LoaderSpec
from migration_assets.specs.registry import all_loaders
from migration_assets.target import guard as tg

ALLOWED = ["127.0.0.1", "localhost"]


class Cpu:
    """CPU seconds of this process (and its children) and of one PostgreSQL backend: a
    cost that other people's load on the shared machine inflates far less than wall time."""

    def __init__(self, conn=None):
        self.pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0] if conn is not None else None
        self.start = self._now()

    @staticmethod
    def _backend(pid) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return float("nan")

    def _now(self) -> tuple[float, float]:
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        client = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
        return client, self._backend(self.pid) if self.pid else float("nan")

    def done(self) -> dict[str, float]:
        end = self._now()
        return {"client_cpu_s": round(end[0] - self.start[0], 3), "server_cpu_s": round(end[1] - self.start[1], 3)}


def peak_rss_mb() -> float:
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(self_kb, children_kb) / 1024, 1)


def loaders_for(collections) -> list[LoaderSpec]:
    return [l for l in all_loaders() if l.collection in collections]


def measured(dataset: str) -> list[LoaderSpec]:
    return loaders_for(DATASETS[dataset]["collections"])


def source_for(dataset: str, n: int) -> DumpSource:
    return DumpSource(dump_path(dataset, n), DATABASE)


def doc_count(source: DumpSource, loaders, limit: int | None = None) -> int:
    return sum(min(source.count(l.collection), limit or 1 << 62) for l in loaders)


def _limited(source: DumpSource, collection: str, limit: int | None):
    """Raw documents of ``collection``, the first ``limit`` of them."""
    n = 0
    for batch in source.iter_batches(collection, batch_size=5000):
        for raw in batch.docs:
            if limit is not None and n >= limit:
                return
            n += 1
            yield raw


# --- rows in memory (ceiling, naive) ---------------------------------------------------

def built_rows(loader: LoaderSpec, source, raws, parents: dict[tuple[str, str], Any]) -> dict[str, list[list[Any]]]:
    """The rows the platform writes for these documents (the reference transform; own ids
    are the fresh load's uuid5, parents come from ``parents``); rejected documents are left
    out, as the platform quarantines them."""
    from migration_assets.target.write import adapt_row, json_positions
    from migration_assets.transform.context import prepare_context
    from migration_assets.transform.document import reference_document
    from migration_assets.transform.results import Rejected

    ctx = prepare_context(loader, source)
    out: dict[str, list[list[Any]]] = {t.table: [] for t in loader.tables}
    own = set(loader.table_names)
    jpos = {t.table: json_positions(t) for t in loader.tables}
    for raw in raws:
        res = reference_document(loader, raw, ctx)
        if isinstance(res, Rejected):
            continue
        ok = True
        for table, rows in res.rows.items():
            for row in rows:
                for i, v in enumerate(row):
                    if isinstance(v, LegacyRef):
                        pk = new_id(v.table, v.legacy_id) if v.table in own else parents.get((v.table, v.legacy_id))
                        ok = ok and pk is not None
                        row[i] = pk
        if ok:
            for table, rows in res.rows.items():
                pos = jpos[table]
                out[table].extend(adapt_row(r, pos) if pos else r for r in rows)
    return out


def own_ids(loader: LoaderSpec, rows: dict[str, list[list[Any]]]) -> dict[tuple[str, str], Any]:
    """(table, legacy id) -> id of the rows just built (later loaders reference them)."""
    out = {}
    for t in loader.tables:
        names = t.column_names
        if "id" in names and "legacy_object_id" in names:
            i, li = names.index("id"), names.index("legacy_object_id")
            out.update({(t.table, r[li]): r[i] for r in rows[t.table]})
    return out


def parent_ids(conn, loaders) -> dict[tuple[str, str], Any]:
    """(table, legacy id) -> id of every row of the parents these loaders reference."""
    out = {}
    for table in sorted({p for l in loaders for p in l.external_parents()}):
        for legacy, pk in conn.execute(f"SELECT legacy_object_id, id FROM public.{table}"):
            out[(table, legacy)] = pk
    return out


# --- (a) the ceiling -------------------------------------------------------------------

def ceiling(dataset: str, n: int, url: str, limit: int | None = None) -> dict[str, Any]:
    from migration_assets.target.write import copy_types

    source = source_for(dataset, n)
    loaders = measured(dataset)
    conn = tg.connect(url, ALLOWED)
    parents = parent_ids(conn, loaders)
    built = []
    for l in loaders:
        rows = built_rows(l, source, _limited(source, l.collection, limit), parents)
        parents.update(own_ids(l, rows))
        built.append((l, rows))
    total_rows = sum(len(r) for _, rows in built for r in rows.values())
    cpu = Cpu(conn)
    t0 = time.perf_counter()
    for l, rows in built:
        for t in l.tables:
            names = copy_types(conn, f"public.{t.table}")
            with conn.transaction(), conn.cursor() as cur:
                with cur.copy(f"COPY public.{t.table} ({', '.join(t.column_names)}) FROM STDIN (FORMAT BINARY)") as cp:
                    cp.set_types([names[c] for c in t.column_names])
                    for row in rows[t.table]:
                        cp.write_row(row)
    seconds = time.perf_counter() - t0
    used = cpu.done()
    conn.close()
    return {"seconds": seconds, "docs": doc_count(source, loaders, limit), "rows": total_rows, **used,
            "method": "psycopg binary COPY (set_types), one COPY per table, rows prebuilt", "peak_rss_mb": peak_rss_mb()}


# --- (b) the platform ------------------------------------------------------------------

def platform_reference(dataset: str, n: int, url: str, limit: int | None = None) -> dict[str, Any]:
    """(b) with the compiled code off: the reference transform and checksums."""
    return platform(dataset, n, url, limit, compiled=False)


def platform(dataset: str, n: int, url: str, limit: int | None = None, compiled: bool = True) -> dict[str, Any]:
    import migration_assets.transform.compiled  # noqa: F401  (imported before the clock starts, as in a warm process)
    from migration_assets.load.remap import apply_remap
    from migration_assets.load.report import LoadOptions
    from migration_assets.load.run import run_loader
    from migration_assets.verify.checksums import verify_loader, verify_remap
    from migration_assets.verify.load_digests import LoadDigests

    source = source_for(dataset, n)
    loaders = measured(dataset)
    conn = tg.connect(url, ALLOWED)
    out: dict[str, Any] = {"docs": doc_count(source, loaders), "loaders": {}}
    timings: dict[str, float] = {}
    cpu = Cpu(conn)
    t0 = time.perf_counter()
    for l in loaders:
        # as the job's load steps: each batch keeps the source side of the checks after it
        r = run_loader(l, source, conn, LoadOptions(batch_size=5000, run_id="bench", compiled=compiled,
                                                    digests=LoadDigests if compiled else None))
        out["loaders"][l.name] = {"docs": r.docs_read, "loaded": r.docs_loaded, "quarantined": r.docs_quarantined,
                                  "seconds": round(r.seconds, 3)}
        for k, v in r.timings.items():
            timings[k] = timings.get(k, 0.0) + v
    for l in loaders:
        for remap in l.remaps:
            timings["remap"] = timings.get("remap", 0.0) + apply_remap(l, remap, source, conn, run_id="bench").seconds
    t_load = time.perf_counter() - t0
    src_s = tgt_s = 0.0
    ok = True
    read_source = False
    for l in loaders:
        # the checks after the load: the source side is what the load kept of its read
        v = verify_loader(l, source, conn, compiled=compiled, loaded_by="bench")
        read_source = read_source or v.read_source
        ok = ok and v.ok and all(t.counts_match for t in v.tables.values())
        src_s += v.seconds_source
        tgt_s += v.seconds_target
        for remap in l.remaps:
            tv = verify_remap(l, remap, source, conn)
            ok = ok and tv.checksums_match
    seconds = time.perf_counter() - t0
    out.update(cpu.done())
    timings["verify_source"] = src_s
    timings["verify_target"] = tgt_s
    timings["verify_other"] = seconds - t_load - src_s - tgt_s
    out.update({
        "seconds": seconds, "load_seconds": t_load, "verified": ok, "checks_read_source": read_source,
        "timings": {k: round(v, 3) for k, v in timings.items()}, "peak_rss_mb": peak_rss_mb(),
    })
    out.update(checksum_rates(loaders, source, conn, compiled))  # after the clock: a later verification
    conn.close()
    return out


def checksum_rates(loaders, source, conn, compiled: bool) -> dict[str, Any]:
    """Rows per second of each side of a verification that reads the source afresh (a scheduled
    one): not part of (b), whose checks take the source side from the load. PostgreSQL's side is
    timed alone: inside a verification it runs while the source side is read."""
    from migration_assets.verify.checksums import target_query, verify_loader

    src_rows = tgt_rows = 0
    src_s = tgt_s = 0.0
    for l in loaders:
        v = verify_loader(l, source, conn, compiled=compiled)
        src_s += v.seconds_source
        t = time.perf_counter()
        for table in l.tables:
            conn.execute(*target_query(table, v.acknowledged, True, None, None)).fetchall()
        tgt_s += time.perf_counter() - t
        src_rows += sum(t.source.count for t in v.tables.values())
        tgt_rows += sum(t.target.count for t in v.tables.values())
    return {"rows": tgt_rows, "checksum_source_rows_per_s": round(src_rows / src_s) if src_s else None,
            "checksum_target_rows_per_s": round(tgt_rows / tgt_s) if tgt_s else None,
            "fresh_verify_source_s": round(src_s, 3)}


def parents(dataset: str, n: int, url: str, limit: int | None = None) -> dict[str, Any]:
    """Setup: load the parent collections with the platform (not measured)."""
    from migration_assets.load.remap import apply_remap
    from migration_assets.load.report import LoadOptions
    from migration_assets.load.run import run_loader

    source = source_for(dataset, n)
    conn = tg.connect(url, ALLOWED)
    t0 = time.perf_counter()
    for l in loaders_for(DATASETS[dataset]["parents"]):
        run_loader(l, source, conn, LoadOptions(batch_size=5000, run_id="bench-setup"))
        for remap in l.remaps:
            apply_remap(l, remap, source, conn, run_id="bench-setup")
    conn.execute("VACUUM ANALYZE")
    conn.close()
    return {"seconds": time.perf_counter() - t0}


# --- (c) naive -------------------------------------------------------------------------

def naive(dataset: str, n: int, url: str, limit: int | None = None) -> dict[str, Any]:
    """What a first script does: decode, transform, INSERT one row at a time."""
    source = source_for(dataset, n)
    loaders = measured(dataset)
    conn = psycopg.connect(url)  # one transaction, committed at the end
    cpu = Cpu(conn)
    t0 = time.perf_counter()
    parents = parent_ids(conn, loaders)
    rows_written = 0
    for l in loaders:
        rows = built_rows(l, source, _limited(source, l.collection, limit), parents)
        parents.update(own_ids(l, rows))
        with conn.cursor() as cur:
            for t in l.tables:
                sql = (f"INSERT INTO public.{t.table} ({', '.join(t.column_names)}) "
                       f"VALUES ({', '.join(['%s'] * len(t.column_names))})")
                for row in rows[t.table]:
                    cur.execute(sql, row)
                    rows_written += 1
    conn.commit()
    seconds = time.perf_counter() - t0
    used = cpu.done()
    conn.close()
    return {"seconds": seconds, "docs": doc_count(source, loaders, limit), "rows": rows_written, **used,
            "method": "reference transform + one INSERT per row (psycopg execute), one transaction",
            "peak_rss_mb": peak_rss_mb()}


def naive_to_sql(dataset: str, n: int, url: str, limit: int | None = None) -> dict[str, Any]:
    """The other naive script: the same rows as DataFrames, ``pandas.DataFrame.to_sql``
    (``method="multi"``, multi-row INSERTs of 1000 rows) through SQLAlchemy."""
    import pandas as pd
    import sqlalchemy as sa

    source = source_for(dataset, n)
    loaders = measured(dataset)
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg2://"))
    cpu = Cpu()
    t0 = time.perf_counter()
    with engine.begin() as c:
        parents = {}
        for table in sorted({p for l in loaders for p in l.external_parents()}):
            for legacy, pk in c.exec_driver_sql(f"SELECT legacy_object_id, id FROM public.{table}"):
                parents[(table, legacy)] = pk
        rows_written = 0
        for l in loaders:
            rows = built_rows(l, source, _limited(source, l.collection, limit), parents)
            parents.update(own_ids(l, rows))
            for t in l.tables:
                data = [[v.obj if hasattr(v, "obj") and type(v).__name__ == "Jsonb" else v for v in r] for r in rows[t.table]]
                frame = pd.DataFrame(data, columns=list(t.column_names), dtype=object)
                frame.to_sql(t.table, c, schema="public", if_exists="append", index=False, method="multi", chunksize=1000)
                rows_written += len(frame)
    seconds = time.perf_counter() - t0
    engine.dispose()
    return {"seconds": seconds, "docs": doc_count(source, loaders, limit), "rows": rows_written, **cpu.done(),
            "method": "reference transform + pandas.DataFrame.to_sql(method='multi', chunksize=1000)",
            "peak_rss_mb": peak_rss_mb()}


# --- (d) dlt ---------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    """BSON values dlt does not know (ObjectId, Decimal128) as str / Decimal."""
    from bson import Decimal128, ObjectId

    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, Decimal128):
        return value.to_decimal()
    return value


def dlt_load(dataset: str, n: int, url: str, limit: int | None = None) -> dict[str, Any]:
    import dlt

    from migration_assets.source.documents import DECODE_OPTIONS

    source = source_for(dataset, n)
    loaders = measured(dataset)
    # dlt wants a password in the DSN even when the server trusts the connection.
    parts = url.split("://", 1)[1]
    creds = f"postgresql://postgres:x@{parts.split('@', 1)[1]}"
    pipelines_dir = Path(__file__).resolve().parent / "data" / f"dlt-{uuid.uuid4().hex[:8]}"

    def docs(collection: str):
        for raw in _limited(source, collection, limit):
            yield _plain(bson.decode(raw, DECODE_OPTIONS))

    cpu = Cpu()
    t0 = time.perf_counter()
    pipeline = dlt.pipeline(pipeline_name=f"bench_{uuid.uuid4().hex[:8]}", pipelines_dir=str(pipelines_dir),
                            destination=dlt.destinations.postgres(credentials=creds), dataset_name="dlt_bench",
                            progress=None)
    resources = [dlt.resource(docs(l.collection), name=l.collection, write_disposition="append") for l in loaders]
    info = pipeline.run(resources)
    seconds = time.perf_counter() - t0
    used = cpu.done()
    with psycopg.connect(url) as c:
        rows = sum(c.execute(f"SELECT count(*) FROM dlt_bench.{t}").fetchone()[0]
                   for (t,) in c.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'dlt_bench' "
                                         "AND tablename NOT LIKE '\\_dlt%'").fetchall())
    import shutil

    shutil.rmtree(pipelines_dir, ignore_errors=True)
    return {"seconds": seconds, "docs": doc_count(source, loaders, limit), "rows": rows, **used,
            "method": f"dlt {dlt.__version__} pipeline.run, postgres destination, default settings",
            "load_info": str(info).splitlines()[0][:200], "peak_rss_mb": peak_rss_mb()}


class ServerCpu:
    """CPU seconds of the whole PostgreSQL server: the postmaster and every backend, ended ones
    included (the postmaster's reaped children): a ranged load's steps each have their own."""

    def __init__(self, conn):
        directory = conn.execute("SHOW data_directory").fetchone()[0]
        self.postmaster = int(Path(directory, "postmaster.pid").read_text().split()[0])
        self.start = self._now()

    @staticmethod
    def _stat(pid: int) -> list[str]:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()

    def _now(self) -> float:
        tick = os.sysconf("SC_CLK_TCK")
        f = self._stat(self.postmaster)
        total = sum(int(x) for x in f[11:15]) / tick  # its own and its reaped children's
        for child in Path(f"/proc/{self.postmaster}/task/{self.postmaster}/children").read_text().split():
            try:
                c = self._stat(int(child))
                total += (int(c[11]) + int(c[12])) / tick
            except (OSError, IndexError, ValueError):
                pass  # ended meanwhile: counted once the postmaster reaps it
        return total

    def done(self) -> float:
        return round(self._now() - self.start, 3)


class LoadWaits:
    """What the load's backends are doing, sampled from ``pg_stat_activity`` every ``interval``
    seconds while a run goes (sessions named ``load_…``, as ``bookkeeping.load_session`` names
    them): ``CPU`` when active without a wait event, ``Client:ClientRead`` when PostgreSQL waits
    for the client (the client is the bottleneck), else the wait event (``IO:WALSync``: a commit
    waiting for the disk; ``LWLock:…``: contention). Shares of all samples."""

    def __init__(self, url: str, interval: float = 0.05):
        self.url, self.interval, self.counts = url, interval, Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="load-waits", daemon=True)

    def __enter__(self) -> LoadWaits:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        with tg.connect(self.url, ALLOWED, application_name="bench_waits") as conn:
            while not self._stop.wait(self.interval):
                for state, kind, event in conn.execute(
                        "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                        "WHERE application_name LIKE 'load\\_%' AND pid <> pg_backend_pid()").fetchall():
                    self.counts["CPU" if state == "active" and kind is None
                                else f"{kind}:{event}" if kind else state] += 1

    def shares(self) -> dict[str, float]:
        total = sum(self.counts.values()) or 1
        return {k: round(v / total, 3) for k, v in self.counts.most_common()}


PARITY_CHECKS = {CONFORMS, ROW_COUNT, CHECKSUM, QUARANTINE, FIELDS, REFERENCE_PARITY}


def parity_job(dataset: str):
    """The dataset's tables and remaps with the checks (b) computes (conformance, row counts,
    checksums, census, quarantine, reference parity; not the invariants), as one Dagster job
    (the reconstructor the run worker and its steps call, like the command line's job_named)."""
    from migration_assets.definitions import loaded

    keys = {table_key(t) for l in measured(dataset) for t in l.table_names}
    keys |= {column_key(r.table, r.column) for l in measured(dataset) for r in l.remaps}
    definitions = loaded()
    checks = {k for k in definitions.resolve_asset_graph().asset_check_keys
              if k.asset_key in keys and k.name in PARITY_CHECKS}
    return definitions.resolve_job_def("migrate_all_tables").get_subset(asset_selection=keys,
                                                                         asset_check_selection=checks)


def dagster_run(dataset: str, n: int, url: str, limit: int | None = None, *, executor: str = "multiprocess",
                ranges: int = 1) -> dict[str, Any]:
    """(e): the work of (b) as a Dagster run started the way the command line starts one: a run
    worker forked from a server that preloaded the definitions, the platform's executor
    (``in_process``, or ``multiprocess`` with steps forked from the worker's own server), every
    ranged loader in ``ranges`` range steps. Its wall time includes all of that."""
    import tempfile

    import dagster as dg

    from migration_assets.orchestration.launch import RunSpec, StartedRun, wait_for_end

    home = tempfile.mkdtemp(prefix="bench_home_")
    Path(home, "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    os.environ.update(DAGSTER_HOME=home, MIGRATION_SOURCE="dump", MONGODB_DATABASE=DATABASE,
                      MONGODUMP_DIR=str(dump_path(dataset, n)), MONGODB_URI="mongodb://127.0.0.1:1/",
                      MIGRATION_PG_URL=url, MIGRATION_PG_ALLOWED_HOSTS=",".join(ALLOWED))
    loaders = measured(dataset)
    source = source_for(dataset, n)
    ops = {f"load_{l.name}": {"config": {"batch_size": 5000, "progress_interval_s": 60.0,
                                         **({"ranges": str(ranges)} if l.ranged else {})}} for l in loaders}
    execution = IN_PROCESS if executor == "in_process" else multiprocess(max(2, ranges))
    spec = RunSpec("migrate_all_tables", {"ops": ops, **execution},
                   reconstructor=("bench.measure", "parity_job", (dataset,)))
    with tg.connect(url, ALLOWED) as conn:
        server = ServerCpu(conn)
    cpu = Cpu()
    with dg.DagsterInstance.get() as instance, LoadWaits(url) as waits:
        t0 = time.perf_counter()
        started = StartedRun(instance, spec)
        started.wait_for_run(lambda s: time.sleep(s) or False)
        wait_for_end(started, lambda: None, lambda s: time.sleep(s) or False, lambda: None)
        seconds = time.perf_counter() - t0
        run = instance.get_run_by_id(started.run_id)
        evaluations = [e.dagster_event.event_specific_data for e in
                       instance.all_logs(started.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)]
        failed = [e.check_name for e in evaluations if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]
        mats = [e.dagster_event.event_specific_data.materialization for e in
                instance.all_logs(started.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)]
        steps = step_seconds(instance, started.run_id)
    load_cpu = sum(m.metadata["client_cpu_s"].value for m in mats if "client_cpu_s" in m.metadata)
    used = cpu.done()
    ok = run.status == dg.DagsterRunStatus.SUCCESS and not failed
    return {"seconds": seconds, "docs": doc_count(source, loaders), "ranges": ranges, "executor": executor,
            "verified": ok, "failed": failed or ([] if ok else [f"run {run.status.value}"]),
            "checks": len(evaluations), "steps": len(steps), "step_seconds": round(sum(steps.values()), 3),
            "client_cpu_s": round(load_cpu, 3), "run_process_cpu_s": used["client_cpu_s"],
            "server_cpu_s": server.done(), "peak_rss_mb": peak_rss_mb(), "load_waits": waits.shares(),
            "method": "the command line's launch path (orchestration/launch.py): a run worker, the platform's executor"}


def step_seconds(instance, run_id: str) -> dict[str, float]:
    """Each step's own time, STEP_START to its end (what the steps did, not starting them)."""
    import dagster as dg

    starts, out = {}, {}
    for e in instance.all_logs(run_id):
        ev = e.dagster_event
        if ev is None or not e.step_key:
            continue
        if ev.event_type == dg.DagsterEventType.STEP_START:
            starts[e.step_key] = e.timestamp
        elif ev.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE) \
                and e.step_key in starts:
            out[e.step_key] = e.timestamp - starts[e.step_key]
    return out


KINDS = {"ceiling": ceiling, "platform": platform, "platform_reference": platform_reference, "naive": naive, "naive_to_sql": naive_to_sql, "dlt": dlt_load,
         "parents": parents}

if __name__ == "__main__":
    kind, dataset, n, url = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    limit = int(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[5] != "-" else None
    if kind.startswith("dagster_"):  # (e): dagster_in_process_1, dagster_multiprocess_2, ...
        executor, ranges = kind.removeprefix("dagster_").rsplit("_", 1)
        result = dagster_run(dataset, n, url, limit, executor=executor, ranges=int(ranges))
    else:
        result = KINDS[kind](dataset, n, url, limit)
    print("RESULT " + json.dumps(result, default=str), flush=True)
