"""``--json``: one JSON document on standard output, for cron jobs and monitoring probes.
Every document carries ``exit_status`` (the command's exit status); the README gives each
command's shape."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from migration_assets.console.progress import RunState
from migration_assets.console.render import run_url


def emit(document: dict[str, Any]) -> None:
    print(json.dumps(document, indent=2))


def timestamp(ts: float | None) -> str | None:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat() if ts else None


def scalars(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """The metadata values a JSON reader can use as they are (counts, names, durations)."""
    return {k: v for k, v in (metadata or {}).items() if isinstance(v, (str, int, float, bool)) and len(str(v)) < 200}


def run_document(run: RunState) -> dict[str, Any]:
    return {
        "job": run.job, "partition": run.partition, "run_id": run.run_id, "status": run.status,
        "started_at": timestamp(run.started_at),
        "seconds": round(run.seconds, 3) if run.seconds is not None else None, "url": run_url(run.run_id),
        "exit_status": int(run.exit_status()),
        "assets": [{
            "asset": a.key, "partition": a.partition,
            "materialized": a.metadata is not None and not a.observed,
            "metadata": scalars(a.metadata),
            "checks": [{"check": c.name, "passed": c.passed, "severity": c.severity} for c in a.checks.values()],
            "checks_not_run": [c for c in a.checks_planned if c not in a.checks],
        } for a in run.assets.values()],
        "errors": [{"where": e.where, "error": e.text, "next": e.next_step} for e in run.errors()],
    }
