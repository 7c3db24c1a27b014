"""Invariant checks built from the specs (logic in ``migration_assets/invariants.py``):

* per loader, one ``invariants_<loader>`` op: ``no_orphan_references`` and
  ``enum_values_valid`` per table, the business rules of its tables, and
  ``source_references_resolve`` on the root table (references in Mongo pointing nowhere);
* ``ledger_invariants`` on ``public/funds_ledger_entries``: immutability, balances vs
  Mongo, per-payment sums, money CHECKs, append-only across runs.

Every check but ``source_references_resolve`` is blocking with severity ERROR. Metadata: the
number of violations, ``failure_reasons`` (typed reason -> count), the measures as numbers,
and the violating rows (by legacy id) as a markdown table.
"""

import dagster as dg

from migration_assets import invariants as inv
from migration_assets.factory.keys import column_key, table_key
from migration_assets.factory.metadata import markdown_table
from migration_assets.kinds import Enum
from migration_assets.resources import MongoSourceResource, PostgresTargetResource
from migration_assets.spec import LoaderSpec, TableSpec, all_tables

LEDGER_CHECKS = {
    "ledger_immutable": "the append-only triggers exist and refuse UPDATE, DELETE and TRUNCATE (probed, rolled back)",
    "ledger_balances_match_source": "balance per (account, user, currency) equals Mongo's",
    "ledger_payment_sums": "per payment: debits = credits, the escrow hold equals payments.amount, "
                           "release/refund take exactly it out of escrow",
    "ledger_money_checks": "CHECK (amount > 0) exists, is validated and holds on payments and the ledger",
    "ledger_append_only": "no entry changed or disappeared since a run first saw it",
}


def check_result(result: inv.InvariantResult, key: dg.AssetKey | None = None) -> dg.AssetCheckResult:
    """An invariant result as an AssetCheckResult: ERROR if anything but warnings failed."""
    meta = {
        "violations": result.errors + result.warned,
        "failure_reasons": dict(result.reasons) or {"none": 0},
        **{k: v for k, v in result.measures.items()},
    }
    if result.violations:
        meta["violating_rows"] = dg.MetadataValue.md(markdown_table(
            ["reason", "legacy id / subject", "detail"], inv.violations_table(result)))
    severity = dg.AssetCheckSeverity.ERROR if result.errors else dg.AssetCheckSeverity.WARN
    description = None
    if not result.passed:
        description = "; ".join(f"{n} {r}" for r, n in sorted(result.reasons.items()))
    return dg.AssetCheckResult(
        asset_key=key or table_key(result.table), check_name=result.name, passed=result.passed,
        severity=severity, metadata=meta, description=description,
    )


def _has_refs(table: TableSpec) -> bool:
    return any(c.ref_table for c in table.fk_columns if c.name != "id")


def _has_enums(table: TableSpec) -> bool:
    return any(isinstance(c.kind, Enum) for c in table.columns)


def remap_of(loader: LoaderSpec, rule: inv.BusinessRule):
    """The remap writing the column a rule is about (the rule then checks that asset)."""
    for r in loader.remaps:
        if r.table == rule.table and r.column in rule.sql:
            return r
    return None


def table_rules(loader: LoaderSpec, table: TableSpec) -> list[inv.BusinessRule]:
    return [r for r in inv.rules_for(table.table) if remap_of(loader, r) is None]


def invariant_specs(loader: LoaderSpec) -> list[dg.AssetCheckSpec]:
    specs = []
    for t in loader.tables:
        key = table_key(t.table)
        if _has_refs(t):
            specs.append(dg.AssetCheckSpec("no_orphan_references", asset=key, blocking=True,
                                           description="every reference names an existing row (ERROR)"))
        if _has_enums(t):
            specs.append(dg.AssetCheckSpec("enum_values_valid", asset=key, blocking=True,
                                           description="enum columns hold their type's values, and the types the spec's"))
        for rule in table_rules(loader, t):
            specs.append(dg.AssetCheckSpec(rule.name, asset=key, blocking=True, description=rule.description))
    if any(True for _ in inv._ref_columns(loader)):
        specs.append(dg.AssetCheckSpec(
            "source_references_resolve", asset=table_key(loader.root.table), blocking=False,
            description="references in Mongo that point nowhere, one by one: each must be quarantined "
                        "(WARN lists them; ERROR if one is not quarantined)"))
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
                if _has_refs(t):
                    yield check_result(inv.orphan_references(conn, t))
                if _has_enums(t):
                    yield check_result(inv.enum_values(conn, t))
                for rule in table_rules(loader, t):
                    yield check_result(inv.business_rule(conn, rule))
            if "source_references_resolve" in names:
                with mongo.session() as source:
                    yield check_result(inv.dangling_source_references(loader, source, conn))

    return _invariants


def build_remap_rule_checks(loader: LoaderSpec) -> list[dg.AssetChecksDefinition]:
    """Rules about a remapped column, on the remap's own asset (its own op: a check of the
    loader's op there would close a cycle through the blocking checks)."""
    out = []
    for t in loader.tables:
        for rule in inv.rules_for(t.table):
            remap = remap_of(loader, rule)
            if remap is None:
                continue
            out.append(_rule_check(rule, column_key(remap.table, remap.column)))
    return out


def _rule_check(rule: inv.BusinessRule, key: dg.AssetKey) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=key, name=rule.name, blocking=True, description=rule.description)
    def _rule(postgres: PostgresTargetResource) -> dg.AssetCheckResult:
        with postgres.connect(rule.name) as conn:
            return check_result(inv.business_rule(conn, rule), key)

    return _rule


def build_ledger_checks() -> dg.AssetChecksDefinition | None:
    tables = all_tables()
    if inv.LEDGER not in tables or "payments" not in tables:
        return None
    loader = tables[inv.LEDGER][0]
    key = table_key(inv.LEDGER)
    specs = [dg.AssetCheckSpec(name, asset=key, blocking=True, description=d) for name, d in LEDGER_CHECKS.items()]

    @dg.multi_asset_check(name="ledger_invariants", specs=specs,
                          description="Funds-ledger invariants (blocking, ERROR), each with typed failure reasons.")
    def _ledger(context: dg.AssetCheckExecutionContext, mongo: MongoSourceResource,
                postgres: PostgresTargetResource):
        with postgres.connect("ledger_invariants") as conn:
            yield check_result(inv.ledger_immutability(conn))
            with mongo.session() as source:
                yield check_result(inv.ledger_balances(loader, source, conn))
            yield check_result(inv.ledger_payment_sums(conn))
            yield check_result(inv.money_checks(conn))
            yield check_result(inv.ledger_append_only(conn, context.run.run_id))

    return _ledger
