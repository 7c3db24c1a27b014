"""Builds Dagster definitions from the declarative table specs (the only place that turns
specs into assets and checks)."""
