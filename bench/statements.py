"""What PostgreSQL spends (b)'s time on, statement by statement (a script, not a test):

    BENCH_PG_SERVER=postgresql://postgres@127.0.0.1:PORT/postgres python -m bench.statements [--n 1000000]

Runs (b) (the loads with their checks, as ``measure.platform`` does) on the dataset's dump into
a fresh database and reads ``pg_stat_statements``: per normalized statement its execution time,
calls, rows, buffer hits and reads, full-page images and WAL. The server must load the
extension (``shared_preload_libraries = pg_stat_statements``; ``track = all`` so the foreign-key
checks fired inside a COPY show on their own lines), so it is a private server, not the shared
one the tests use::

    initdb -D DIR/data -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8
    pg_ctl -D DIR/data -l DIR/log -w -o "-p PORT -k DIR -c listen_addresses=127.0.0.1 \\
        -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all" start

Writes ``bench/statements_results.json``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import psycopg

from bench import pg
from bench.datasets import ROOT, ensure_dump

TOP = """
SELECT total_exec_time, calls, rows, shared_blks_hit, shared_blks_read, wal_fpi, wal_bytes,
       left(regexp_replace(query, '\\s+', ' ', 'g'), 140)
FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT %s
"""


def main(argv=None) -> int:
    from bench.measure import platform

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--dataset", default="core")
    p.add_argument("--top", type=int, default=20)
    p.add_argument("--out", default=str(ROOT / "bench" / "statements_results.json"))
    a = p.parse_args(argv)
    ensure_dump(a.dataset, a.n)
    pg.ensure_template()
    name, url = pg.create("statements")
    try:
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            c.execute("SELECT pg_stat_statements_reset()")
        run = platform(a.dataset, a.n, url)
        with psycopg.connect(url, autocommit=True) as c:
            total = float(c.execute("SELECT sum(total_exec_time) FROM pg_stat_statements").fetchone()[0])
            top = c.execute(TOP, [a.top]).fetchall()
    finally:
        pg.drop(name)
    statements = [{"seconds": round(t / 1000, 2), "share": round(t / total, 4), "calls": calls, "rows": rows,
                   "blocks_hit": hit, "blocks_read": read, "wal_fpi": fpi, "wal_mb": round(float(wal) / 1e6),
                   "statement": q}
                  for t, calls, rows, hit, read, fpi, wal, q in top]
    out = {"dataset": a.dataset, "n": a.n, "docs": run["docs"], "seconds": round(run["seconds"], 2),
           "timings": run["timings"], "server_exec_s": round(total / 1000, 2), "statements": statements}
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"{run['docs']} documents in {run['seconds']:.1f} s; statements {total / 1000:.1f} s")
    for s in statements:
        print(f"{s['seconds']:7.2f} s {s['share']:6.1%} {s['calls']:>8} calls  {s['statement'][:90]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
