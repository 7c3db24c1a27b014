"""Invariant checks built from the specs (logic in ``verify/invariants/``), computed in the
step that loads their table (one-step loaders) or checks it (ranged loaders):

* per table: ``no_orphan_references`` and ``enum_values_valid``, the business rules its spec
  declares; ``source_references_resolve`` on the root table (references in Mongo pointing
  nowhere);
* a remap's ``belongs`` rule, on the remap's own asset;
* the ledger's invariants on the ledger loader's table (the spec that declares a ledger):
  immutability, balances vs Mongo, per-payment sums, money CHECKs, append-only across runs.

Every check but ``source_references_resolve`` is blocking with severity ERROR. Metadata: the
number of violations, ``failure_reasons`` (typed reason -> count), the measures as numbers,
and the violating rows (by legacy id) as a markdown table.
"""

from collections.abc import Collection, Iterator

import dagster as dg
import psycopg

from migration_assets.factory.metadata import markdown_table
from migration_assets.factory.naming import ENUMS, NO_ORPHANS, SOURCE_REFERENCES, table_key
from migration_assets.source.documents import Source
from migration_assets.specs.kinds import Enum
from migration_assets.specs.model import DeferredRemap, LoaderSpec, TableSpec
from migration_assets.verify.invariants import integrity, ledger
from migration_assets.verify.invariants.result import InvariantResult
from migration_assets.verify.invariants.rules import business_rule, remap_rule

LEDGER_CHECKS = {
    "ledger_immutable": "the append-only triggers exist and refuse UPDATE, DELETE and TRUNCATE (probed, rolled back)",
    "ledger_balances_match_source": "balance per (account, user, currency) equals Mongo's",
    "ledger_payment_sums": "per payment: debits = credits, the escrow hold equals payments.amount, "
                           "release/refund take exactly it out of escrow",
    "ledger_money_checks": "CHECK (amount > 0) exists, is validated and holds on payments and the ledger",
    "ledger_append_only": "no entry changed or disappeared since a run first saw it",
}


def check_result(result: InvariantResult, key: dg.AssetKey | None = None) -> dg.AssetCheckResult:
    """An invariant result as an AssetCheckResult: ERROR if anything but warnings failed."""
    meta = {
        "violations": result.errors + result.warned,
        "failure_reasons": dict(result.reasons) or {"none": 0},
        **{k: v for k, v in result.measures.items()},
    }
    if result.violations:
        meta["violating_rows"] = dg.MetadataValue.md(markdown_table(
            ["reason", "legacy id / subject", "detail"], result.rows()))
    severity = dg.AssetCheckSeverity.ERROR if result.errors else dg.AssetCheckSeverity.WARN
    description = None
    if not result.passed:
        description = "; ".join(f"{n} {r}" for r, n in sorted(result.reasons.items()))
    return dg.AssetCheckResult(
        asset_key=key or table_key(result.table), check_name=result.name, passed=result.passed,
        severity=severity, metadata=meta, description=description,
    )


def has_refs(table: TableSpec) -> bool:
    return any(c.ref_table for c in table.fk_columns if c.name != "id")


def has_enums(table: TableSpec) -> bool:
    return any(isinstance(c.kind, Enum) for c in table.columns)


def invariant_specs(loader: LoaderSpec) -> list[dg.AssetCheckSpec]:
    specs = []
    for t in loader.tables:
        key = table_key(t.table)
        if has_refs(t):
            specs.append(dg.AssetCheckSpec(NO_ORPHANS, asset=key, blocking=True,
                                           description="every reference names an existing row (ERROR). Reads the referenced "
                                                       "tables, of whatever domain: that row is what the reference "
                                                       "promises; rows the application dual-wrote there count"))
        if has_enums(t):
            specs.append(dg.AssetCheckSpec(ENUMS, asset=key, blocking=True,
                                           description="enum columns hold their type's values, and the types the spec's"))
        for rule in t.rules:
            specs.append(dg.AssetCheckSpec(rule.name, asset=key, blocking=True, description=rule.description))
    if any(True for _ in integrity.reference_columns(loader)):
        specs.append(dg.AssetCheckSpec(
            SOURCE_REFERENCES, asset=table_key(loader.root.table), blocking=False,
            description="references in Mongo that point nowhere, one by one: each must be quarantined "
                        "(WARN lists them; ERROR if one is not quarantined). Reads the referenced tables' "
                        "legacy ids, of whatever domain, to know which targets PostgreSQL lacks"))
    return specs


def ledger_specs(loader: LoaderSpec) -> list[dg.AssetCheckSpec]:
    if loader.ledger is None:
        return []
    key = table_key(loader.root.table)
    return [dg.AssetCheckSpec(name, asset=key, blocking=True, description=d) for name, d in LEDGER_CHECKS.items()]


def invariant_results(loader: LoaderSpec, source: Source, conn: psycopg.Connection,
                      selected: Collection[dg.AssetCheckKey], run_id: str) -> Iterator[dg.AssetCheckResult]:
    """The loader's invariant and ledger checks that are in ``selected``."""
    def wanted(table: str, name: str) -> bool:
        return dg.AssetCheckKey(table_key(table), name) in selected

    for t in loader.tables:
        if has_refs(t) and wanted(t.table, NO_ORPHANS):
            yield check_result(integrity.orphan_references(conn, t))
        if has_enums(t) and wanted(t.table, ENUMS):
            yield check_result(integrity.enum_values(conn, t))
        for rule in t.rules:
            if wanted(t.table, rule.name):
                yield check_result(business_rule(conn, rule, t.table))
    root = loader.root.table
    if wanted(root, SOURCE_REFERENCES):
        yield check_result(integrity.dangling_source_references(loader, source, conn))
    if loader.ledger is None:
        return
    probes = {
        "ledger_immutable": lambda: ledger.ledger_immutability(conn, root),
        "ledger_balances_match_source": lambda: ledger.ledger_balances(loader, source, conn),
        "ledger_payment_sums": lambda: ledger.ledger_payment_sums(conn, loader),
        "ledger_money_checks": lambda: ledger.money_checks(conn, loader),
        "ledger_append_only": lambda: ledger.ledger_append_only(conn, loader, run_id),
    }
    for name, probe in probes.items():
        if wanted(root, name):
            yield check_result(probe())


def remap_rule_spec(loader: LoaderSpec, remap: DeferredRemap, key: dg.AssetKey) -> dg.AssetCheckSpec | None:
    """A rule about a remapped column, on the remap's own asset (a check of the loader's step
    there would close a cycle through the blocking checks)."""
    rule = remap_rule(loader, remap)
    return None if rule is None else dg.AssetCheckSpec(rule.name, asset=key, blocking=True,
                                                         description=rule.description)


def remap_rule_result(loader: LoaderSpec, remap: DeferredRemap, conn: psycopg.Connection,
                      key: dg.AssetKey) -> dg.AssetCheckResult:
    return check_result(business_rule(conn, remap_rule(loader, remap), remap.table), key)
