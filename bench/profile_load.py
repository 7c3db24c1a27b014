"""Where a load's time goes, by stage of the batch path (a script, not a test):

    python -m bench.profile_load [--n 100000] [--dataset core]

Runs (b)'s load (``run_loader`` per loader, batches of 5000, no checks) on the dataset's dump
into a fresh database, under ``py-spy record --idle`` (wall-clock samples, waiting on
PostgreSQL included), then splits the samples by the innermost frame of the batch path they
are in: decode and transform, reference resolution, the rows' COPY or upsert, and each piece
of the bookkeeping that shares the batch's transaction (quarantine, ``id_map``, deferred
references, the checkpoint). Waiting on PostgreSQL shows under the statement waited for, so
the bookkeeping's share is the part of PostgreSQL's work per document the COPY ceiling does
not pay. Writes ``bench/profile_results.json``."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench import pg
from bench.datasets import ROOT, ensure_dump

# innermost matching function -> stage (the first match walking from the leaf up)
STAGES = {
    "add_id_map": "id_map", "upsert_deferred": "deferred refs", "clear_deferred": "deferred refs",
    "write_quarantine": "quarantine", "resolve_quarantine": "quarantine (resolve)",
    "advance_checkpoint": "checkpoint", "apply_deferred": "self-references",
    "LoaderWriter.write": "rows (COPY / upsert)", "ReferenceResolver.resolve": "resolve references",
    "BatchStep.transform_all": "decode + transform", "prepare_context": "context",
    "DumpSource.iter_batches": "read source", "Transaction.__exit__": "commit",
}
LOAD_SCRIPT = """
import sys
from bench.measure import ALLOWED, measured, source_for
from migration_assets.load.report import LoadOptions
from migration_assets.load.run import run_loader
from migration_assets.target import guard as tg
dataset, n, url = sys.argv[1], int(sys.argv[2]), sys.argv[3]
source = source_for(dataset, n)
with tg.connect(url, ALLOWED) as conn:
    for l in measured(dataset):
        run_loader(l, source, conn, LoadOptions(batch_size=5000, run_id="profile"))
"""


def stage_of(frames: list[str]) -> str:
    for frame in reversed(frames):  # leaf last in py-spy's raw format
        name = frame.split(" (", 1)[0]  # "LoaderWriter.write (file:line)"
        if name in STAGES:
            return STAGES[name]
    return "other (start-up, imports, planning)"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--dataset", default="core")
    p.add_argument("--out", default=str(ROOT / "bench" / "profile_results.json"))
    a = p.parse_args(argv)
    ensure_dump(a.dataset, a.n)
    pg.ensure_template()
    name, url = pg.create("profile")
    raw = Path(tempfile.mkdtemp()) / "samples.txt"
    try:
        subprocess.run(["py-spy", "record", "--idle", "--rate", "200", "--format", "raw", "-o", str(raw), "--",
                        sys.executable, "-c", LOAD_SCRIPT, a.dataset, str(a.n), url], check=True, cwd=ROOT,
                       capture_output=True)
    finally:
        pg.drop(name)
    counts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        counts[stage_of(stack.split(";"))] += int(n)
    total = sum(counts.values())
    shares = {k: round(v / total, 4) for k, v in counts.most_common()}
    Path(a.out).write_text(json.dumps({"dataset": a.dataset, "n": a.n, "samples": total, "shares": shares},
                                      indent=2) + "\n")
    for k, v in shares.items():
        print(f"{v:7.1%}  {k}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
