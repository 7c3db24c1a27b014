"""Invariant checks built from the specs (logic in ``verify/invariants/``):

* per loader, one ``invariants_<loader>`` op: ``no_orphan_references`` and
  ``enum_values_valid`` per table, the business rules its table specs declare, and
  ``source_references_resolve`` on the root table (references in Mongo pointing nowhere);
* a remap's ``belongs`` rule on the remap's own asset;
* ``ledger_invariants`` on the ledger loader's table (the spec that declares a ledger):
  immutability, balances vs Mongo, per-payment sums, money CHECKs, append-only across runs.

Every check but ``source_references_resolve`` is blocking with severity ERROR. Metadata: the
number of violations, ``failure_reasons`` (typed reason -> count), the measures as numbers,
and the violating rows (by legacy id) as a markdown table.
"""

import dagster as dg

from migration_assets.factory.keys import column_key, table_key
from migration_assets.factory.metadata import markdown_table
from migration_assets.factory.resources import MongoSourceResource, PostgresTargetResource
from migration_assets.specs.kinds import Enum
from migration_assets.specs.model import BusinessRule, LoaderSpec, TableSpec
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
            specs.append(dg.AssetCheckSpec("no_orphan_references", asset=key, blocking=True,
                                           description="every reference names an existing row (ERROR). Reads the referenced "
                                                       "tables, of whatever domain: that row is what the reference "
                                                       "promises; rows the application dual-wrote there count"))
        if has_enums(t):
            specs.append(dg.AssetCheckSpec("enum_values_valid", asset=key, blocking=True,
                                           description="enum columns hold their type's values, and the types the spec's"))
        for rule in t.rules:
            specs.append(dg.AssetCheckSpec(rule.name, asset=key, blocking=True, description=rule.description))
    if any(True for _ in integrity.reference_columns(loader)):
        specs.append(dg.AssetCheckSpec(
            "source_references_resolve", asset=table_key(loader.root.table), blocking=False,
            description="references in Mongo that point nowhere, one by one: each must be quarantined "
                        "(WARN lists them; ERROR if one is not quarantined). Reads the referenced tables' "
                        "legacy ids, of whatever domain, to know which targets PostgreSQL lacks"))
    return specs


def build_invariant_checks(loader: LoaderSpec) -> dg.AssetChecksDefinition | None:
    specs = invariant_specs(loader)
    if not specs:
        return None
    names = {s.name for s in specs}

    @dg.multi_asset_check(name=f"invariants_{loader.name}", specs=specs,
                          description=f"Integrity and business invariants of {', '.join(loader.table_names)}.")
    def _invariants(mongo: MongoSourceResource, postgres: PostgresTargetResource):
        with postgres.connect(f"invariants_{loader.name}") as conn:
            for t in loader.tables:
                if has_refs(t):
                    yield check_result(integrity.orphan_references(conn, t))
                if has_enums(t):
                    yield check_result(integrity.enum_values(conn, t))
                for rule in t.rules:
                    yield check_result(business_rule(conn, rule, t.table))
            if "source_references_resolve" in names:
                with mongo.session() as source:
                    yield check_result(integrity.dangling_source_references(loader, source, conn))

    return _invariants


def build_remap_rule_checks(loader: LoaderSpec) -> list[dg.AssetChecksDefinition]:
    """Rules about a remapped column, on the remap's own asset (its own op: a check of the
    loader's op there would close a cycle through the blocking checks)."""
    out = []
    for remap in loader.remaps:
        rule = remap_rule(loader, remap)
        if rule is not None:
            out.append(rule_check(rule, remap.table, column_key(remap.table, remap.column)))
    return out


def rule_check(rule: BusinessRule, table: str, key: dg.AssetKey) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=key, name=rule.name, blocking=True, description=rule.description)
    def _rule(postgres: PostgresTargetResource) -> dg.AssetCheckResult:
        with postgres.connect(rule.name) as conn:
            return check_result(business_rule(conn, rule, table), key)

    return _rule


def build_ledger_checks() -> dg.AssetChecksDefinition | None:
    loader = ledger.ledger_loader()
    if loader is None:
        return None
    key = table_key(loader.root.table)
    specs = [dg.AssetCheckSpec(name, asset=key, blocking=True, description=d) for name, d in LEDGER_CHECKS.items()]

    @dg.multi_asset_check(name="ledger_invariants", specs=specs,
                          description="Funds-ledger invariants (blocking, ERROR), each with typed failure reasons.")
    def _ledger(context: dg.AssetCheckExecutionContext, mongo: MongoSourceResource,
                postgres: PostgresTargetResource):
        with postgres.connect("ledger_invariants") as conn:
            yield check_result(ledger.ledger_immutability(conn, loader.root.table))
            with mongo.session() as source:
                yield check_result(ledger.ledger_balances(loader, source, conn))
            yield check_result(ledger.ledger_payment_sums(conn, loader))
            yield check_result(ledger.money_checks(conn, loader))
            yield check_result(ledger.ledger_append_only(conn, loader, context.run.run_id))

    return _ledger
