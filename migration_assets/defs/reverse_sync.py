"""The reverse sync (``cutover/reverse_sync.py``) as a Dagster job: ``reverse_sync`` copies a
domain's writes made in PostgreSQL after its cutover back into Mongo, for a rollback. Each
collection it writes gets a materialization of its ``mongodb/<collection>`` asset (a dry run:
an observation) with what was found and done; the domain's parity checks then prove the round
trip (``migration-assets verify``)."""

import datetime as dt

import dagster as dg

from migration_assets.cutover.reverse_sync import DELETE, INSERT, UPDATE, ReverseSync, cutover_time, reverse_sync
from migration_assets.factory.metadata import markdown_table
from migration_assets.factory.naming import REVERSE_SYNC, collection_key
from migration_assets.factory.resources import MongoSourceResource, PostgresTargetResource
from migration_assets.specs.registry import DOMAINS, all_loaders
from migration_assets.target.reverse_book import latest_cutover

LISTED = 1000  # documents per action a materialization lists (the counts are exact)


class ReverseSyncConfig(dg.Config):
    """A domain (or ``all``) or loaders by name; the cutover time (ISO-8601; empty: the domain's
    cutover record); ``force_reason``: run although the record says Mongo is written."""

    domain: str = ""
    loaders: list[str] = []
    dry_run: bool = False
    cutover_at: str = ""
    force_reason: str = ""


def result_metadata(r: ReverseSync) -> dict:
    meta = {"reverse_sync": "dry run: nothing written" if r.dry_run else "applied",
            "cutover_at": r.cutover_at.isoformat(), "documents_insert": len(r.of(INSERT)),
            "documents_update": len(r.of(UPDATE)), "documents_delete": len(r.of(DELETE)),
            "documents_written": len(r.applied), "documents_unchanged": len(r.unchanged),
            "documents_refused": len(r.refused), "documents_left_alone": len(r.left_alone),
            "ledger_conflicts": len(r.conflicts), "new_object_ids": len(r.new_object_ids),
            "documents_read": r.documents_read, "seconds": round(r.seconds, 3),
            "seconds_locating": round(r.seconds_locating, 3), "resumed_run": r.resumed_from or "",
            "planned": dg.MetadataValue.json([{"document": p.document, "action": p.action, "set": p.set_fields,
                                               "unset": p.unset_fields} for p in r.planned[:LISTED]]),
            "not_applied": dg.MetadataValue.json({"refused": r.refused, "left_alone": r.left_alone,
                                                  "ledger_conflicts": r.conflicts})}
    if r.planned:
        meta["documents"] = dg.MetadataValue.md(markdown_table(
            ["document _id", "action", "fields set", "fields unset"],
            [(p.document, p.action, ", ".join(p.set_fields), ", ".join(p.unset_fields)) for p in r.planned[:200]]))
    return meta


@dg.op(name="reverse_sync_step", description="Copies the domain's writes made in PostgreSQL after its cutover back "
                                             "into Mongo ($set/$unset of mapped paths; previous versions kept).")
def reverse_sync_step(context: dg.OpExecutionContext, config: ReverseSyncConfig, mongo: MongoSourceResource,
                      postgres: PostgresTargetResource) -> dg.Output:
    domains = DOMAINS if config.domain == "all" else (config.domain,) if config.domain else ()
    loaders = [l for l in all_loaders() if l.domain in domains or l.name in config.loaders]
    if not loaders:
        raise dg.Failure(f"no loader in domain {config.domain!r} or named {', '.join(config.loaders) or '(none)'}")
    at = dt.datetime.fromisoformat(config.cutover_at) if config.cutover_at else None
    done: list[ReverseSync] = []
    with postgres.connect("reverse_sync") as conn:
        times = {d: cutover_time(d, latest_cutover(conn, d), at, config.force_reason or None)
                 for d in sorted({l.domain for l in loaders})}
    # the Mongo target's allowlist is checked before any connection to it, reading included
    target = None if config.dry_run else mongo.open_target()
    with postgres.connect("reverse_sync") as conn, mongo.session() as source:
        try:
            for loader in loaders:
                r = reverse_sync(loader, source, target, conn, run_id=context.run.run_id,
                                 cutover_at=times[loader.domain], dry_run=config.dry_run,
                                 forced=config.force_reason or None, workers=mongo.checksum_workers,
                                 progress=context.log.info)
                context.log.info(r.summary)
                event = dg.AssetObservation if config.dry_run or not r.applied else dg.AssetMaterialization
                context.log_event(event(asset_key=collection_key(loader.collection), metadata=result_metadata(r)))
                done.append(r)
        finally:
            if target is not None:
                target.client.close()
    totals = {k: sum(len(getattr(r, k)) for r in done) for k in ("applied", "unchanged", "refused", "left_alone",
                                                                    "conflicts")}
    if totals["refused"]:
        first = next(f"{r.loader} {d}: {why}" for r in done for d, why in r.refused.items())
        raise dg.Failure(description=f"{totals['refused']} document(s) not written: {first}", metadata=totals)
    return dg.Output(totals, metadata=totals)


@dg.job(name=REVERSE_SYNC, tags={"kind": "reverse_sync"},
        description="Rollback that loses nothing: the writes made in PostgreSQL after a domain's cutover are copied "
                    "back into Mongo, verified by the same parity checks.")
def reverse_sync_job():
    reverse_sync_step()


defs = dg.Definitions(jobs=[reverse_sync_job])
