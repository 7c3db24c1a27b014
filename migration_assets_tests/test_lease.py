"""Who may take a load another run owns (``target/lease.py``): only an owner that is gone.
A worker on this host that lives keeps it however silent it is (a frozen process is not a
dead one); a pid reused by a later process is not the owner; a worker elsewhere keeps it
while its heartbeat is fresh."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from migration_assets.processes import Process, this_host
from migration_assets.target.lease import Heartbeat, Lease, Owner, live_holder, why_free

pytestmark = pytest.mark.unit

ME = Owner("run-b")


def lease(worker: Process | None, *, age: float | None = 1.0, run_id: str = "run-a", status: str = "running",
          released: bool = False) -> Lease:
    return Lease("users", run_id, status, worker, age, released)


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_live_local_owner_keeps_the_load_however_silent():
    alive = Process.current()
    assert live_holder(lease(alive, age=10_000.0), ME) is not None
    assert "(alive)" in live_holder(lease(alive), ME)


def test_a_gone_owner_gives_the_load_up_and_says_why():
    gone = Process(this_host(), dead_pid(), time.time())
    assert live_holder(lease(gone, age=0.5), ME) is None
    assert "is gone" in why_free(lease(gone))
    reused = Process(this_host(), os.getpid(), time.time() - 10_000)  # this pid, but a process started later
    assert live_holder(lease(reused), ME) is None


def test_elsewhere_the_heartbeat_decides():
    remote = Process("another-host", 1234, time.time())
    assert live_holder(lease(remote, age=5.0), ME) is not None
    assert live_holder(lease(remote, age=5_000.0), Owner("run-b", ttl_s=900)) is None


def test_free_when_completed_released_ended_mine_or_never_leased():
    alive = Process.current()
    assert live_holder(lease(alive, status="completed"), ME) is None
    assert live_holder(lease(alive, released=True), ME) is None
    assert "gave it up" in why_free(lease(alive, released=True))
    assert live_holder(lease(alive, run_id="run-b"), ME) is None
    assert live_holder(lease(None, age=None), ME) is None  # written by a direct call: no lease
    assert live_holder(lease(alive), Owner("run-b", run_ended=lambda run_id: True)) is None
    assert live_holder(lease(alive), Owner("run-b", run_ended=lambda run_id: None)) is not None


def test_heartbeat_at_most_every_interval():
    beats = []

    class Conn:
        def execute(self, sql, params):
            beats.append(params)

    now = [0.0]
    beat = Heartbeat(Conn(), "users", Owner("run-a"), clock=lambda: now[0])
    for t in (1.0, 5.0, 10.5, 12.0, 21.0):
        now[0] = t
        beat()
    assert len(beats) == 2
    silent = Heartbeat(Conn(), "users", None, clock=lambda: 100.0)
    silent()
    assert len(beats) == 2
