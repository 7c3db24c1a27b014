"""Invariants of the migrated data: integrity (FKs, references in Mongo, enums), the
business rules the table specs declare, and the funds-ledger book. Each returns an
``InvariantResult``; the Dagster checks only render them."""
