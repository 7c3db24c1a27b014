"""Shared test helpers."""

from __future__ import annotations

import dagster as dg


def run_job(definitions, name: str, *, partition_key: str | None = None, run_config=None, instance=None):
    job = definitions.resolve_job_def(name)
    return job.execute_in_process(instance=instance or dg.DagsterInstance.ephemeral(), partition_key=partition_key,
                                  raise_on_error=False, run_config=run_config or {})


def check_evaluations(result) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


def failed_checks(result) -> list[str]:
    return sorted(f"{k[0]}:{k[1]}" for k, e in check_evaluations(result).items() if not e.passed)


def table_rows(conn, table: str) -> list[tuple]:
    """Every row, in a total order (composite keys included)."""
    return sorted(conn.execute(f"SELECT * FROM public.{table}").fetchall(), key=repr)


def meta_value(evaluation, key: str):
    v = evaluation.metadata[key]
    return getattr(v, "value", v)


def source_side(v) -> dict:
    """Everything a verification's source side says (a ``LoaderVerification``), comparable."""
    return {"tables": {t: (tv.source.hexdigest, tv.quarantined_rows, {p: d.hexdigest for p, d in tv.source_buckets.items()})
                       for t, tv in v.tables.items()},
            "documents": (v.source_docs, v.quarantined_docs), "unmappable": v.unmappable,
            "census": (v.census.pairs, v.census.counts, v.census.ids, v.census.map_keys)}
