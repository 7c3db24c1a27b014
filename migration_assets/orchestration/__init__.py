"""Who runs a Dagster run, whether that process still lives, and releasing the runs whose
process died (their pool slots and run-queue place), for the CLI and the daemon alike."""
