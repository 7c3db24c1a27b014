"""Every Dagster identity of the platform, derived in one place from the specs (as
dagster-dbt's translator does for dbt nodes): asset keys, groups, kinds, tags, pools, op,
job and check names. Whatever reads the instance (the CLI, sensors, readiness) names things
through here too, so a rename is one edit."""

import dagster as dg

# --- asset keys, groups, kinds, tags -----------------------------------------------------------

INFRASTRUCTURE = "infrastructure"  # group of the cross-domain assets
SOURCE_KINDS = {"mongodb"}
TABLE_KINDS = {"mongodb", "postgres"}
TARGET_KINDS = {"postgres"}  # written in PostgreSQL from PostgreSQL (id_map, a remapped column)


def table_key(table: str) -> dg.AssetKey:
    """A PostgreSQL table: ``public/<table>``."""
    return dg.AssetKey(["public", table])


def column_key(table: str, column: str) -> dg.AssetKey:
    """A column written by its own step (the selectedOffer remap)."""
    return dg.AssetKey(["public", table, column])


def collection_key(collection: str) -> dg.AssetKey:
    """A Mongo collection: ``mongodb/<collection>``."""
    return dg.AssetKey(["mongodb", collection])


ID_MAP = table_key("id_map")
GAPS = table_key("pg_dualwrite_gaps")
READINESS = dg.AssetKey(["migration", "cutover_readiness"])


def domain_tags(domain: str) -> dict[str, str]:
    return {"domain": domain}


def kind_tags(kinds: set[str]) -> dict[str, str]:
    """Kinds as tags, for the places that take tags and no ``kinds=`` (a graph-backed asset's outputs)."""
    return {f"dagster/kind/{k}": "" for k in sorted(kinds)}


# --- pools and ops ---------------------------------------------------------------------------


def pool(loader: str) -> str:
    """The Dagster pool of every op that writes a loader's tables (one run at a time: dagster.yaml)."""
    return f"table_{loader}"


def loader_of_pool(name: str) -> str | None:
    return name.removeprefix("table_") if name.startswith("table_") else None


def load_op(loader: str) -> str:
    return f"load_{loader}"


def plan_op(loader: str) -> str:
    return f"plan_{loader}"


def range_op(loader: str) -> str:
    return f"load_{loader}_range"


def finish_op(loader: str) -> str:
    return f"finish_{loader}"


def checks_op(loader: str) -> str:
    """A ranged loader's checks (a one-step loader computes its checks in its load step). Not
    ``verify_<loader>``: that is a job name, and a loader may share its domain's name."""
    return f"checks_{loader}"


# --- jobs ------------------------------------------------------------------------------------

MIGRATE_ALL = "migrate_all_tables"
VERIFY_ALL = "verify_all"
RESYNC = "resync_rows"
RECONCILE = "reconcile"
REVERSE_SYNC = "reverse_sync"
READINESS_JOB = "cutover_readiness"
HOURLY_VERIFICATION = "hourly_verification"


def migrate_job(domain: str) -> str:
    return f"migrate_{domain}"


def verify_job(domain: str) -> str:
    return f"verify_{domain}"


# --- check names -----------------------------------------------------------------------------

CONFORMS = "schema_conforms"
ROW_COUNT = "row_count_parity"
CHECKSUM = "checksum_parity"
PARITY = (ROW_COUNT, CHECKSUM)
QUARANTINE = "quarantine_empty"
FIELDS = "fields_accounted_for"
NO_ORPHANS = "no_orphan_references"
ENUMS = "enum_values_valid"
SOURCE_REFERENCES = "source_references_resolve"
REFERENCE_PARITY = "reference_parity"
ID_MAP_CONSISTENT = "id_map_consistent"
NO_OPEN_GAPS = "no_open_gaps"
