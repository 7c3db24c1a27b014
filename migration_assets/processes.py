"""A process, named so that another process (of another Dagster instance, or none) can tell
whether it still lives: host, pid and start time. A pid reused by a later process is not the
same process: it started after the one recorded."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import psutil

SLACK_S = 1.0  # start times are kept to 1/100 s; a record made after the start may round up


def this_host() -> str:
    return socket.gethostname()


def process_started(pid: int) -> float:
    return psutil.Process(pid).create_time()


@dataclass(frozen=True)
class Process:
    host: str
    pid: int
    since: float  # the process started at or before this time

    @classmethod
    def current(cls) -> Process:
        pid = os.getpid()
        return cls(this_host(), pid, process_started(pid))

    @property
    def local(self) -> bool:
        return self.host == this_host()

    def alive(self) -> bool:
        """Only meaningful for a process on this host (see ``local``)."""
        try:
            p = psutil.Process(self.pid)
            return p.status() != psutil.STATUS_ZOMBIE and p.create_time() <= self.since + SLACK_S
        except psutil.NoSuchProcess:
            return False

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"
