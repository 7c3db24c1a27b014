"""Exit statuses that tell a script what happened (the README's runbook lists them)."""

from __future__ import annotations

import signal
from collections.abc import Iterable
from enum import IntEnum


class Exit(IntEnum):
    OK = 0  # everything passed
    FAILED = 1  # an ERROR check failed, a run failed, or a verdict / diff says no
    USAGE = 2  # unknown command, domain or table
    WARNINGS = 3  # only WARN checks failed (quarantine, unresolved references)
    INTERRUPTED = 130  # SIGINT (Ctrl-C): the run was canceled, the shell's 128 + signal
    TERMINATED = 143  # SIGTERM: the same

    @classmethod
    def for_signal(cls, signum: int) -> Exit:
        return cls.TERMINATED if signum == signal.SIGTERM else cls.INTERRUPTED


def worst(statuses: Iterable[int]) -> Exit:
    """The status of several outcomes: a failure outweighs warnings, warnings outweigh OK."""
    seen = set(statuses)
    for status in (Exit.TERMINATED, Exit.INTERRUPTED, Exit.USAGE, Exit.FAILED, Exit.WARNINGS):
        if status in seen:
            return status
    return Exit.OK


def for_checks(severities_failed: Iterable[str], run_failed: bool = False) -> Exit:
    """A run's status from the severities (``ERROR`` / ``WARN``) of its failed checks."""
    failed = set(severities_failed)
    if run_failed or "ERROR" in failed:
        return Exit.FAILED
    return Exit.WARNINGS if failed else Exit.OK
