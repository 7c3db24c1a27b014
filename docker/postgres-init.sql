-- Dagster's own storage lives next to the migration target, in its own database.
CREATE DATABASE dagster OWNER migration;
