"""A run started from the command line, executed by a run worker process of its own, as
Dagster's run launchers do, and followed through its events.

* **Start.** Before a run starts, the dead runs holding its pools are released and the live
  ones waited for, by the rule the queued-run coordinator applies at run granularity
  (``pools.py``). The run worker is a child process, forked from a server that preloaded the
  definitions, in a session of its own; it calls ``dg.execute_job`` on the job named through
  ``migration_assets.definitions.job_named``, with its executor (multiprocess: steps side by
  side; in-process: one process for a small run) and tags naming its process.
* **Follow.** The command line reads the run's events from the instance (``follow``), as
  ``watch`` reads any run's.
* **Cancel.** SIGINT/SIGTERM to the command line terminate the run as Dagster terminates the
  runs it launched: marked canceling, then its worker interrupted; Dagster's own interrupt
  handling stops the steps, and the run ends CANCELED. The UI's Terminate does the same
  (``MonitoredRunLauncher.terminate``), which the command line then follows. A worker that
  does not end within the grace is killed with its steps, and the run marked canceled.
* **Death.** The worker gets SIGTERM when the command line dies (a dead parent: the run ends
  failed, its steps stopped, its batches kept); a worker that dies under the command line
  has its run marked failed (what run monitoring would do).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from migration_assets.factory.executors import PRELOAD
from migration_assets.factory.workers import interrupt_worker, worker_tags
from migration_assets.orchestration.dead_runs import holder_of, release_dead_runs
from migration_assets.orchestration.pools import pool_holders
from migration_assets.orchestration.records import run_by_tag

INVOCATION_TAG = "migration/invocation"
CANCEL_GRACE_S = 30.0
DEFINITIONS = "migration_assets.definitions"  # the module whose job_named() the steps rebuild the job with


class RunNotStarted(RuntimeError):
    """The run worker failed before the run existed (an invalid run config, a broken
    instance); ``causes`` is the worker's error chain, outermost first, as (class name,
    message): the command line explains it as if it had been raised here."""

    def __init__(self, message: str, causes: Sequence[tuple[str, str]] = ()):
        super().__init__(message)
        self.causes = list(causes)

    def __reduce__(self):
        return RunNotStarted, (str(self), self.causes)

    @classmethod
    def of(cls, exc: BaseException) -> RunNotStarted:
        chain, seen, current = [], set(), exc
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            chain.append((type(current).__name__, str(current)))
            current = current.__cause__ or current.__context__
        return cls(f"{type(exc).__name__}: {exc}", chain)


@dataclass(frozen=True)
class RunSpec:
    """What to run: everything the worker needs, picklable."""

    job: str
    run_config: Mapping[str, Any] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    asset_selection: Sequence[dg.AssetKey] | None = None
    # The command line's environment when it started the run: the worker forks from a server
    # started earlier, whose environment may be older.
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    # (module, function, args) that rebuild the job in the worker and its steps
    # (dg.build_reconstructable_job); the code location's job of this name by default.
    reconstructor: tuple[str, str, tuple] | None = None


def silence_dagster_warnings() -> None:
    """Dagster's beta and preview notices speak to whoever writes the definitions, not to
    operators; every other warning still shows."""
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)


def _context() -> multiprocessing.context.BaseContext:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def warm_up() -> None:
    """Starts the server run workers fork from, in the background: its imports (about a second)
    overlap the command line's own start instead of delaying the first run."""
    _context()
    threading.Thread(target=multiprocessing.forkserver.ensure_running, name="forkserver", daemon=True).start()


def _die_with_parent() -> None:
    """SIGTERM to this process when its parent (the forkserver, which ends with the command
    line) ends: a killed command line does not leave its run going on unseen."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _work(spec: RunSpec, token: str, report) -> None:
    """The run worker: executes the run, then says how it went (an exception that kept the
    run from existing, or None)."""
    os.setsid()  # the terminal's Ctrl-C reaches the command line only, which cancels the run
    _die_with_parent()
    os.environ.clear()
    os.environ.update(spec.env)
    silence_dagster_warnings()
    redirect_output(output_path(token))
    try:
        instance = dg.DagsterInstance.get()
        module, function, args = spec.reconstructor or (DEFINITIONS, "job_named", (spec.job,))
        job = dg.build_reconstructable_job(module, function, reconstructable_args=args)
        tags = {**spec.tags, INVOCATION_TAG: token, **worker_tags()}
        with dg.execute_job(job, instance, run_config=dict(spec.run_config), tags=tags,
                            asset_selection=list(spec.asset_selection) if spec.asset_selection else None):
            pass
        report.send(None)
    except BaseException as e:  # anything that kept the run from existing goes to the parent, as text
        report.send(RunNotStarted.of(e))


def output_path(token: str) -> str:
    """Where a run worker's and its steps' console output goes (the event log keeps everything
    else): DAGSTER_HOME/run_workers/<token>.log. ``--verbose`` shows it as it grows."""
    return os.path.join(os.environ.get("DAGSTER_HOME", "."), "run_workers", f"{token}.log")


def redirect_output(path: str) -> None:
    """This process's and its steps' standard output and error to ``path``: the command line
    shows the run from its events (the worker forks from a server, whose terminal may not be
    the command line's)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


class StartedRun:
    """A run worker and, once created, its run."""

    def __init__(self, instance: dg.DagsterInstance, spec: RunSpec):
        self.instance, self.spec = instance, spec
        self.token = uuid.uuid4().hex
        ctx = _context()
        self._report, child = ctx.Pipe(duplex=False)
        self.process = ctx.Process(target=_work, args=(spec, self.token, child), name=f"run {spec.job}")
        self.process.start()
        child.close()
        self.run_id: str | None = None
        self.error: BaseException | None = None
        self.output = output_path(self.token)
        self._read = 0

    def new_output(self) -> str:
        """What the worker and its steps printed since the last call."""
        try:
            with open(self.output, errors="replace") as f:
                f.seek(self._read)
                text = f.read()
                self._read = f.tell()
                return text
        except FileNotFoundError:
            return ""

    def _outcome(self) -> None:
        if self.error is None and self._report.poll():
            try:
                self.error = self._report.recv()
            except EOFError:
                pass

    def wait_for_run(self, stop: Callable[[float], bool], poll_s: float = 0.05) -> str | None:
        """The run's id once the worker created it; None if told to stop first. Raises what
        kept the run from existing."""
        while self.run_id is None:
            run = run_by_tag(self.instance, INVOCATION_TAG, self.token)
            if run is not None:
                self.run_id = run.run_id
                break
            if not self.process.is_alive():
                self.process.join()
                self._outcome()
                raise self.error or RunNotStarted(f"the run worker of {self.spec.job} exited "
                                                  f"(code {self.process.exitcode}) before creating the run")
            if stop(poll_s):
                return None
        return self.run_id

    def run(self) -> dg.DagsterRun | None:
        return self.instance.get_run_by_id(self.run_id) if self.run_id else None

    def terminate(self, why: str) -> bool:
        """Dagster's termination: canceling, then the worker interrupted."""
        run = self.run()
        if run is None:  # not created yet: nothing to cancel but the worker
            self.kill()
            return False
        return interrupt_worker(self.instance, run, why)

    def kill(self) -> None:
        """The worker and its steps (its session), at once."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.join(10)

    def settle(self) -> None:
        """After the worker exited: a run it left unfinished is failed (it died), or canceled
        (it was being canceled)."""
        self.process.join()
        self._outcome()
        run = self.run()
        if run is None or run.is_finished:
            return
        code = self.process.exitcode
        if run.status == dg.DagsterRunStatus.CANCELING:
            self.instance.report_run_canceled(run, message=f"its run worker ended (code {code}) while canceling")
        else:
            self.instance.report_run_failed(run, f"its run worker (pid {self.process.pid}) died (exit code {code})")


def wait_for_pools(instance: dg.DagsterInstance, job: str, pools: Collection[str], say: Callable[[str], None],
                   stop: Callable[[float], bool], *, poll_s: float = 2.0) -> bool:
    """Sleeps until no other run in progress holds a pool of the job, releasing the dead ones:
    False when told to stop first. Says what it waits for, and for whom, each time that changes."""
    said = None
    while True:
        for released in release_dead_runs(instance, job, pools):
            say(f"{job}: {released.line()}")
        held = pool_holders(instance, pools)
        if not held:
            return True
        by_run: dict[str, tuple[dg.DagsterRun, list[str]]] = {}
        for name, runs in held.items():
            for r in runs:
                by_run.setdefault(r.run_id, (r, []))[1].append(name)
        text = "; ".join(f"{', '.join(sorted(names))} held by {holder_of(instance, r).describe(pools=False)}"
                         for r, names in sorted(by_run.values(), key=lambda x: x[0].run_id))
        if text != said:
            say(f"{job}: waiting: {text} (Ctrl-C stops)")
            said = text
        if stop(poll_s):
            return False


def wait_for_end(started: StartedRun, follow: Callable[[], None], stop: Callable[[float], bool],
                 on_stop: Callable[[], None], *, poll_s: float = 0.25) -> None:
    """Follows the run until its worker exits; ``on_stop`` once when told to stop, then a
    grace for the run to end before the worker is killed with its steps."""
    stopped_at = None
    while started.process.is_alive():
        follow()
        if stopped_at is None:
            if stop(poll_s):
                on_stop()
                stopped_at = time.monotonic()
        elif time.monotonic() - stopped_at > CANCEL_GRACE_S:
            started.kill()
        else:
            started.process.join(poll_s)
    started.settle()
