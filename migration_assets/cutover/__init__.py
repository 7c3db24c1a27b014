"""Cutover: the per-domain readiness verdict, the source watermarks the catch-up sensor
compares, and id_map reconciliation. Imports every pure stage below it; no dagster."""
