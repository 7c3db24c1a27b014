"""Bench data: the deterministic generator's documents for N documents, as a mongodump
directory under ``bench/data/`` (gitignored), generated once per (dataset, N) and reused.

The local Mongo server (jongodb) scans ~2.5k docs/s and slows to a few hundred inserts/s
near 100k documents, so it would be the thing measured; the mongodump-directory source is
what the platform reads at volume, and what every measurement here reads.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
DATABASE = "marketplace"

CORE = ("users", "categories", "requesttemplates", "purchaserequests", "selleroffers")

# Datasets: the collections measured (N counts their documents), the parent collections
# loaded beforehand (not measured), the generator steps, and measured documents per unit of
# generator scale (scale 100 -> 64,112 core documents, 24 of them fixed categories; scale 10
# -> 11,822 ledger entries).
DATASETS = {
    "core": {"collections": CORE, "parents": (), "steps": ("marketplace_core",),
             "per_scale": 640.88, "fixed": 24},
    "ledger": {"collections": ("fundsledgerentries",), "parents": CORE + ("payments",),
               "steps": ("marketplace_core", "payments_ledger:payments", "payments_ledger:ledger"),
               "per_scale": 1182.2, "fixed": 0},
}


def dump_path(dataset: str, n: int) -> Path:
    return DATA / f"{dataset}-{n}"


def scale_for(dataset: str, n: int) -> float:
    d = DATASETS[dataset]
    return max(0.05, (n - d["fixed"]) / d["per_scale"])


def ensure_dump(dataset: str, n: int, seed: int = 7) -> tuple[Path, dict[str, int]]:
    """The dump for ``n`` documents (generated in a child process, so that generating a
    million documents in memory never counts towards a measurement's peak RSS)."""
    path = dump_path(dataset, n)
    manifest = path / "manifest.json"
    if manifest.exists():
        return path, json.loads(manifest.read_text())["counts"]
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bench.datasets", dataset, str(n), str(seed)], cwd=ROOT, check=True)
    print(f"  generated {dataset}-{n} in {time.perf_counter() - t:.0f}s", flush=True)
    return path, json.loads(manifest.read_text())["counts"]


def steps(dataset: str):
    """Only the generator steps a dataset needs (a million ledger entries would otherwise
    bring five million documents of other domains along)."""
    import importlib

    out = []
    for name in DATASETS[dataset]["steps"]:
        module, _, step = name.partition(":")
        mod = importlib.import_module(f"migration_assets.generator.{module}")
        out += [getattr(mod, step)] if step else list(mod.STEPS)
    return out


def _generate(dataset: str, n: int, seed: int) -> None:
    from migration_assets.generator.world import World
    from migration_assets.generator.writers import write_dump

    world = World(seed, scale_for(dataset, n))
    for step in steps(dataset):
        step(world)
    keep = DATASETS[dataset]["collections"] + DATASETS[dataset]["parents"]
    docs = {c: world.docs[c] for c in keep if c in world.docs}
    path = dump_path(dataset, n)
    write_dump(path, DATABASE, docs)
    counts = {c: len(docs[c]) for c in DATASETS[dataset]["collections"]}
    (path / "manifest.json").write_text(json.dumps({"dataset": dataset, "n": n, "seed": seed,
                                                     "scale": scale_for(dataset, n), "counts": counts}))


if __name__ == "__main__":
    _generate(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
