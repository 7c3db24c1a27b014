"""``python -m bench.report [bench/results.json]``: the results as the markdown tables of
bench/README.md."""

from __future__ import annotations

import json
import sys
from pathlib import Path

KINDS = [("ceiling", "(a) ceiling: binary COPY"), ("platform", "(b) platform end to end"),
         ("platform_reference", "(b′) platform, fast path off"), ("naive", "(c) naive: INSERT per row"),
         ("naive_to_sql", "(c′) naive: pandas to_sql"), ("dlt", "(d) dlt")]


def render(results: dict) -> str:
    out = []
    for dataset, sizes in results["datasets"].items():
        rows = {n: v for n, v in sizes.items() if n != "summary"}
        out.append(f"### {dataset}\n")
        out.append("| | " + " | ".join(f"{int(n):,} docs" for n in rows) + " |")
        out.append("|---|" + "---:|" * len(rows))
        for kind, label in KINDS:
            cells = []
            for n, r in rows.items():
                m = r.get(kind)
                if not m:
                    cells.append("–")
                    continue
                cpu = r.get("cpu_us_per_doc", {}).get(kind, {})
                srv = cpu.get("server")
                cpu_text = f"{cpu.get('client', 0):.0f}+{srv:.0f}" if srv is not None else f"{cpu.get('client', 0):.0f}+?"
                note = "" if m["docs"] >= int(n) * 0.95 else f" (on {m['docs']:,})"
                cells.append(f"{m['docs_per_s']:,.0f} docs/s, {1e6 / m['docs_per_s']:.0f} µs/doc, cpu {cpu_text} µs{note}")
            out.append(f"| {label} | " + " | ".join(cells) + " |")
        for key, label in [("platform_vs_ceiling", "(b)/(a)"), ("platform_vs_naive", "(b)/(c)"),
                           ("platform_vs_naive_to_sql", "(b)/(c′)"), ("platform_vs_dlt", "(b)/(d)"),
                           ("fast_path_speedup", "(b)/(b′)")]:
            out.append(f"| {label} | " + " | ".join(_ratio(r, key) for r in rows.values()) + " |")
        out.append("| platform peak RSS | " + " | ".join(f"{r['platform']['peak_rss_mb']:.0f} MB" for r in rows.values()) + " |")
        out.append("| checksum rows/s (source / target) | " + " | ".join(
            f"{r['platform']['checksum_source_rows_per_s']:,} / {r['platform']['checksum_target_rows_per_s']:,}"
            for r in rows.values()) + " |")
        out.append("| platform runs (docs/s) | " + " | ".join(
            ", ".join(f"{x:,}" for x in r["platform"].get("runs_docs_per_s", [])) for r in rows.values()) + " |")
        out.append("| ceiling runs (docs/s) | " + " | ".join(
            ", ".join(f"{x:,}" for x in r["ceiling"].get("runs_docs_per_s", [])) for r in rows.values()) + " |")
        out.append("")
        top = list(rows.values())[-1]["platform"]
        out.append(f"Platform time at {int(list(rows)[-1]):,} documents (s): "
                   + ", ".join(f"{k} {v}" for k, v in top["timings"].items()) + "\n")
    return "\n".join(out)


def _ratio(r: dict, key: str) -> str:
    """A ratio, or why there is none: a baseline re-measured on a smaller dump is no same-run basis."""
    base = {"platform_vs_naive": "naive", "platform_vs_naive_to_sql": "naive_to_sql", "platform_vs_dlt": "dlt"}.get(key)
    if base and r.get(base) and r[base]["docs"] != r["platform"]["docs"]:
        return f"– (baseline on {r[base]['docs']:,})"
    return str(r["ratios"].get(key, "–"))


def targets(results: dict) -> str:
    out = ["| target | " + " | ".join(results["datasets"]) + " |", "|---|" + "---|" * len(results["datasets"])]
    names = list(next(iter(results["datasets"].values()))["summary"]["targets"])
    for name in names:
        out.append(f"| {name} | " + " | ".join(
            "met" if d["summary"]["targets"][name] else "**not met**" for d in results["datasets"].values()) + " |")
    return "\n".join(out)


if __name__ == "__main__":
    data = json.loads(Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results.json").read_text())
    print(render(data))
    print(targets(data))
