"""The one vocabulary of a check's outcome, wherever one is shown or counted (the CLI's
summary and status, readiness's history, the reconciliation's trigger)."""

PASSED = "passed"
SKIPPED = "skipped"  # its run succeeded without executing it
NOT_EXECUTED = "not executed (run failed)"
RUNNING = "running"  # its run has not ended: counts for nothing yet


def failed(severity: str) -> str:
    """``failed (ERROR)`` or ``failed (WARN)``."""
    return f"failed ({severity})"


FAILED_ERROR = failed("ERROR")
FAILED_WARN = failed("WARN")


def is_failure(outcome: str) -> bool:
    return outcome.startswith("failed")
