"""What the demo's ``migration-assets migrate --domain all`` spends outside its steps' own work
(a script, not a test; run it after ``scripts/demo.sh`` with the demo's environment):

    source scripts/env.sh && python -m bench.demo_overhead [--executor auto] [--out bench/demo_results.json]

It runs the command as an operator would, then reads every run it made from the instance:
the command's wall time, each step's own time (STEP_START to its end), and the difference:
starting the command, loading the definitions, run workers, step processes, events."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

from bench.measure import step_seconds

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--executor", default="auto", choices=("auto", "in_process", "multiprocess"))
    p.add_argument("--out", default=str(ROOT / "bench" / "demo_results.json"))
    a = p.parse_args(argv)
    with dg.DagsterInstance.get() as instance:
        before = {r.run_id for r in instance.get_runs()}
        t0 = time.perf_counter()
        done = subprocess.run([str(Path(sys.executable).with_name("migration-assets")), "migrate", "--domain", "all",
                               "--executor", a.executor], cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            print(done.stdout[-3000:] + done.stderr[-3000:], file=sys.stderr)
            return 1
        runs = [r for r in instance.get_runs() if r.run_id not in before]
        per_run = {}
        for r in runs:
            steps = step_seconds(instance, r.run_id)
            stats = instance.get_run_record_by_id(r.run_id)
            per_run[r.job_name] = {"steps": len(steps), "step_seconds": round(sum(steps.values()), 2),
                                   "run_seconds": round(stats.end_time - stats.start_time, 2)}
    steps_total = sum(v["step_seconds"] for v in per_run.values())
    result = {"executor": a.executor, "command_seconds": round(wall, 2), "step_seconds": round(steps_total, 2),
              "outside_steps_seconds": round(wall - steps_total, 2), "runs": per_run,
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
