"""Verification: canonical projections on both sides, counts and checksums, the bisection
diff, and the invariants (integrity, business rules, the ledger book). Imports specs,
source, transform and target; no dagster."""
