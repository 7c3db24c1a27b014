"""How runs look on the operator's screen, through rich: on a terminal, a live bar per table
load (documents done of total, rows written, quarantined, docs/s, ETA) under the lines
already finished; anywhere else (CI, a log file, a pipe) plain lines and no escape codes,
each load's progress at most once per ``every`` seconds. Both print one line per finished
asset and end with the summary table and where to open each run."""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn
from rich.table import Table
from rich.text import Text

from migration_assets.console.progress import AssetState, RunState
from migration_assets.factory.metadata import LoadProgress, progress_line

STYLE = {"ok": "green", "FAILED": "bold red", "WARN": "yellow", "SKIPPED": "dim", "NOT RUN": "dim"}
# Where a plain (not a terminal) console wraps tables; a log line is better long than broken.
PLAIN_WIDTH = 200


def standard_output() -> TextIO:
    """Standard output as it is before a run: while a step runs in this process, Dagster points
    file descriptor 1 at the step's captured log, so the console writes to a duplicate taken
    now (its bars and lines then neither land in the run's stdout log nor lose the terminal)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return sys.stdout  # an in-memory stream (redirect_stdout, pytest's capsys): nothing redirects it
    sys.stdout.flush()
    return os.fdopen(os.dup(fd), "w", buffering=1, encoding=sys.stdout.encoding, errors="replace")


def make_console() -> Console:
    out = standard_output()
    console = Console(file=out, highlight=False, soft_wrap=True)
    return console if console.is_terminal else Console(file=out, highlight=False, soft_wrap=True, width=PLAIN_WIDTH)


def run_url(run_id: str) -> str | None:
    """The run's page in the Dagster UI, when DAGSTER_WEBSERVER_URL says where the UI is."""
    base = os.environ.get("DAGSTER_WEBSERVER_URL", "").rstrip("/")
    return f"{base}/runs/{run_id}" if base else None


def failed_steps(a: AssetState, run: RunState) -> list[str]:
    """The failed steps that concern the asset: its own, or else (when it never ran) the
    run's, which kept it from running."""
    own = [f.step for f in run.failures if f.step in a.steps]
    if own or a.metadata is not None or a.checks:
        return own
    return [f.step or "the run" for f in run.failures]


def checks_passed(a: AssetState) -> bool:
    return bool(a.checks_planned) and all(c in a.checks and a.checks[c].passed for c in a.checks_planned)


def asset_verdict(a: AssetState, run: RunState) -> str:
    """FAILED only for what failed: an ERROR check of its own, or a step of its own that failed
    before its checks all passed. An asset that never ran because something failed is NOT RUN."""
    severities = {c.severity for c in a.failed_checks}
    if "ERROR" in severities:
        return "FAILED"
    if a.observed:  # a dry run: nothing materialized, no check to run
        return "WARN" if severities else "ok"
    if failed_steps(a, run):
        if a.metadata is None and not a.checks:
            return "NOT RUN"
        if not (a.metadata is not None and (checks_passed(a) or not a.checks_planned)):
            return "FAILED"
    if severities:
        return "WARN"
    if (a.planned and a.metadata is None) or len(a.checks) < len(a.checks_planned):
        return "SKIPPED"
    return "ok"


def describe(a: AssetState, run: RunState) -> str:
    """What the asset's materialization (or dry-run observation) says, and its checks."""
    m, parts = a.metadata or {}, []
    if "reverse_sync" in m:  # a Mongo collection the reverse sync wrote (or, dry, would write)
        parts.append(f"{m['reverse_sync']}: {m['documents_insert']} insert, {m['documents_update']} update, "
                     f"{m['documents_delete']} delete" + ("" if a.observed else f", {m['documents_written']} written"))
    elif a.observed:
        parts.append(f"dry run: {m.get('rows_loaded')} rows would be written")
        if "open_quarantine" in m:  # the loader's root table speaks for its documents
            parts[-1] += f" from {m['documents_read']} documents, {m['documents_quarantined']} would be quarantined"
            if m["documents_quarantined"]:
                parts[-1] += f" {m['quarantine_reasons']}"
    elif "rows_loaded" in m:
        parts.append(f"{m['rows_loaded']} rows written")
        if "open_quarantine" in m:
            parts[-1] += f" from {m['documents_read']} documents, {m['documents_quarantined']} quarantined"
    elif "rows_updated" in m:
        parts.append(f"{m['rows_updated']} rows updated")
    elif "verdict" in m:
        parts.append(f"verdict {m['verdict']}")
    elif "dagster/row_count" in m:
        parts.append(f"{m['dagster/row_count']} rows")
    if parts and "duration_s" in m and not a.observed:
        parts[-1] += f" in {m['duration_s']:.1f}s"
    resumed = m.get("resumed_from", "-")
    if resumed != "-":  # a position (one stream, or one range), or how a ranged load was taken up
        parts[-1] += f" (resumed the interrupted load: {resumed})" if " " in str(resumed) else \
            f" (resumed the interrupted load after {resumed})"
    if a.planned and a.metadata is None and not a.checks:
        return "not run" + (f": {', '.join(failed)} failed" if (failed := failed_steps(a, run)) else "")
    if a.planned and a.metadata is None:
        parts.append("not materialized")
    if a.checks_planned and not a.observed:
        passed = sum(1 for c in a.checks.values() if c.passed)
        text = f"checks {passed}/{len(a.checks_planned)} passed"
        failed = [f"{c.name} ({c.severity}" + (f": {shorten(c.description)})" if c.description else ")")
                  for c in a.failed_checks]
        missing = [c for c in a.checks_planned if c not in a.checks]
        if failed:
            text += "; failed: " + ", ".join(failed)
        if missing:
            text += f"; {len(missing)} not run" + (f": {', '.join(why)} failed" if (why := failed_steps(a, run)) else "")
        parts.append(text)
    return "; ".join(parts)


def shorten(text: str, width: int = 160) -> str:
    """A check's own account of its failure, on one line."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[:width - 1] + "…"


def asset_line(a: AssetState, run: RunState, prefix: str = "") -> Text:
    verdict = asset_verdict(a, run)
    width = max(len(x.label) for x in run.assets.values())
    return Text.assemble(prefix + "  ", (f"{verdict:7s}", STYLE[verdict]), f" {a.label:{width}s}  {describe(a, run)}")


def load_text(p: LoadProgress) -> str:
    eta = f"{max(0, p.total - p.docs) / p.rate:.0f}s" if p.total and p.rate else "-"
    return f"{p.rows} rows written, {p.quarantined} quarantined, {p.rate:.0f} docs/s, ETA {eta}"


class View:
    """What both renderings share: a header per run, a line per finished asset, errors on
    standard error at the end of a run."""

    def __init__(self, console: Console, every: float, label_runs: bool = False):
        self.console, self.every, self.label_runs = console, every, label_runs
        self.headed: set[str] = set()

    def prefix(self, run: RunState) -> str:
        return f"{run.label}:" if self.label_runs else ""

    def update(self, run: RunState) -> None:
        if run.run_id not in self.headed:
            self.headed.add(run.run_id)
            self.print(Text(f"{run.label}: run {run.run_id}"))
        for a in run.newly_finished():
            self.print(asset_line(a, run, self.prefix(run)))

    def end(self, run: RunState, debug: bool = False) -> None:
        self.update(run)
        for e in run.errors():
            print(e.line, file=sys.stderr)
        if debug:
            for f in run.failures:
                print(f.error.to_string(), file=sys.stderr)

    def print(self, text: Text) -> None:
        self.console.print(text)

    def say(self, text: str) -> None:
        """Plain text of a command's own (a verdict, flags): never read as markup."""
        self.print(Text(text))

    def close(self) -> None:
        pass


class QuietView(View):
    """``--json``: standard output is the document alone; errors still go to standard error."""

    def print(self, text: Text) -> None:
        pass


class PlainView(View):
    def __init__(self, console: Console, every: float, label_runs: bool = False):
        super().__init__(console, every, label_runs)
        self.printed: dict[tuple[str, str], tuple[float, LoadProgress]] = {}

    def update(self, run: RunState) -> None:
        super().update(run)
        now = time.monotonic()
        for step, p in run.loads.items():
            last = self.printed.get((run.run_id, step))
            if last is None or (last[1] != p and now - last[0] >= self.every):
                self.printed[(run.run_id, step)] = (now, p)
                self.print(Text(f"{self.prefix(run)}  {progress_line(p.name, p.docs, p.total, p.rows, p.quarantined, p.rate)}"))


class LiveView(View):
    """A terminal: rich bars, one per running load, plus a spinner naming each run's running steps."""

    def __init__(self, console: Console, every: float, label_runs: bool = False):
        super().__init__(console, every, label_runs)
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), BarColumn(),
                                 TextColumn("{task.fields[detail]}", markup=False), console=console, transient=True)
        self.tasks: dict[tuple[str, str], TaskID] = {}
        self.progress.start()

    def print(self, text: Text) -> None:
        self.progress.console.print(text)

    def update(self, run: RunState) -> None:
        super().update(run)
        wanted = {(run.run_id, step): p for step, p in run.loads.items()}
        wanted[(run.run_id, "")] = None  # the run's own line
        for key in [k for k in self.tasks if k[0] == run.run_id and (k not in wanted or run.status)]:
            self.progress.remove_task(self.tasks.pop(key))
        if run.status:
            return
        for key, p in wanted.items():
            if p is None:
                fields = dict(description=f"{run.label}: {', '.join(sorted(run.running)) or 'starting'}",
                              total=None, completed=0, detail="")
            else:
                fields = dict(description=f"  {p.name}", total=p.total, completed=p.docs,
                              detail=f"{p.docs}/{p.total or '?'} documents, {load_text(p)}")
            if key in self.tasks:
                self.progress.update(self.tasks[key], **fields)
            else:
                self.tasks[key] = self.progress.add_task(**fields)

    def close(self) -> None:
        self.progress.stop()


def make_view(console: Console, every: float, *, live: bool, quiet: bool = False, label_runs: bool = False) -> View:
    if quiet:
        return QuietView(console, every, label_runs)
    return LiveView(console, every, label_runs) if live and console.is_terminal else PlainView(console, every, label_runs)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[str] = ()) -> Table:
    """A table of plain cells; numbers (``right``) never wrap, text may on a narrow terminal."""
    t = Table(box=box.SIMPLE, pad_edge=False, show_edge=False)
    for h in headers:
        t.add_column(h, justify="right" if h in right else "left", no_wrap=h in right)
    for r in rows:
        t.add_row(*(Text(str(v)) for v in r))  # cells are data, never markup ("[auth]")
    return t


def print_summary(console: Console, runs: Sequence[RunState]) -> None:
    """The summary table of the runs (each by its id's first 8 characters, as the UI lists
    runs), then where to open them."""
    rows = []
    for run in runs:
        assets = list(run.assets.values())
        metas = [a.metadata for a in assets if a.metadata is not None]
        checks = [c for a in assets for c in a.checks.values()]
        failed = [c.severity for c in checks if not c.passed]
        planned = sum(1 for a in assets if a.planned)
        rows.append((
            run.label, run.run_id[:8], run.status or "RUNNING", f"{len(metas)}/{planned}" if planned else "-",
            sum(m.get("rows_loaded", m.get("rows_updated", 0)) for m in metas if not m.get("dry_run")) if metas else "-",
            sum(m.get("documents_quarantined", 0) for m in metas if "open_quarantine" in m) if metas else "-",
            f"{sum(1 for c in checks if c.passed)}/{sum(len(a.checks_planned) for a in assets if not a.observed)}"
            + "".join(f", {failed.count(s)} {s} failed" for s in ("ERROR", "WARN") if s in failed),
            f"{run.seconds:.1f}s" if run.seconds is not None else "-",
        ))
    console.print(table(("job", "run", "result", "assets", "rows", "quarantined", "checks", "time"), rows,
                        right=("assets", "rows", "quarantined", "time")))
    links = [(run, run_url(run.run_id)) for run in runs]
    if all(url for _, url in links):
        for run, url in links:
            console.print(Text(f"{run.label}: {url}"))
    elif len(runs) == 1:
        console.print(Text(f"run {runs[0].run_id}: open it in the Dagster UI under Runs "
                           "(set DAGSTER_WEBSERVER_URL to print its link)"))
    else:
        console.print(Text("open the runs in the Dagster UI under Runs by the ids above "
                           "(set DAGSTER_WEBSERVER_URL to print their links)"))
