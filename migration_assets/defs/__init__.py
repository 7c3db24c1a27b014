"""What ``dg.load_from_defs_folder`` loads: each module adds its own pieces (resources bound
to the environment, the table assets and checks, invariants, jobs, sensors, readiness).
Dagster's floor, on top of factory/; only cli.py stands above it."""
