"""Integrity and business invariants of the migrated data, each with typed failure reasons.

Every function returns an :class:`InvariantResult`: passed or not, violations (a sample,
each naming legacy ids), exact counts by reason, and numeric measures for the UI. The
Dagster checks (``factory/invariant_checks.py``) only render these.

* foreign keys: no orphan reference in PostgreSQL (physical FKs make one impossible, unless
  a constraint was dropped or bypassed); references in Mongo that point nowhere, one by one,
  each of which the loader must have quarantined (``missing_reference``);
* business rules: one primary address per user, active category names unique by
  ``lower(btrim(name))``, a purchase request's selected offer is one of its own offers,
  enum columns hold only their type's values (and the types hold the spec's values);
* the funds ledger (``funds_ledger_entries``): immutability triggers exist and refuse
  UPDATE, DELETE and TRUNCATE (probed in a rolled-back transaction); balances per
  (account, user, currency) equal Mongo's; entries per payment follow the double-entry
  model; the money CHECKs exist, are validated and hold; and entries never change across
  runs (``migration.ledger_entry_snapshot``, sql/0021).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg
from bson import Decimal128, ObjectId

from migration_assets.kinds import Enum, Reject, RowId, legacy_hex
from migration_assets.source import decode, raw_id, raw_id_hex
from migration_assets.spec import MISSING, LoaderSpec, TableSpec, all_tables, resolve_source
from migration_assets.verify import QuarantineIndex

SAMPLE = 50


@dataclass(frozen=True)
class Violation:
    reason: str  # typed: e.g. orphan_reference, update_not_refused, balance_mismatch
    subject: str  # what is wrong, by legacy id (document, row, account key)
    detail: str = ""


@dataclass
class InvariantResult:
    name: str
    table: str
    violations: list[Violation] = field(default_factory=list)  # at most `limit` kept
    reasons: dict[str, int] = field(default_factory=dict)  # exact counts by reason
    measures: dict[str, int | float] = field(default_factory=dict)
    limit: int = SAMPLE
    # Reasons that are reported but do not fail the invariant (surfaced, e.g. quarantined).
    warnings: frozenset[str] = frozenset()

    def add(self, reason: str, subject: str, detail: str = "", count: int = 1) -> None:
        self.reasons[reason] = self.reasons.get(reason, 0) + count
        if len(self.violations) < self.limit:
            self.violations.append(Violation(reason, subject, detail))

    @property
    def errors(self) -> int:
        return sum(n for r, n in self.reasons.items() if r not in self.warnings)

    @property
    def warned(self) -> int:
        return sum(n for r, n in self.reasons.items() if r in self.warnings)

    @property
    def passed(self) -> bool:
        return not self.reasons

    @property
    def subjects(self) -> list[str]:
        return [v.subject for v in self.violations]


def _chunks(items: list, n: int = 5000) -> Iterable[list]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def row_label_sql(table: TableSpec) -> tuple[str, str]:
    """(join, expression) naming a row of ``table`` by legacy ids."""
    if table.has_legacy_id:
        return "", "t.legacy_object_id"
    parent = table.column(table.parent_column).ref_table if table.parent_column else None
    keys = [k for k in table.key if k != table.parent_column]
    rest = " || ' ' || ".join(f"'{k}=' || coalesce(t.{k}::text, 'null')" for k in keys) or "''"
    if parent:
        return (f" LEFT JOIN public.{parent} lp ON lp.id = t.{table.parent_column}",
                f"coalesce(lp.legacy_object_id, 'id ' || t.{table.parent_column}::text) || ' ' || {rest}")
    return "", "t.id::text"


# --- foreign keys --------------------------------------------------------------------------

def orphan_references(conn: psycopg.Connection, table: TableSpec, *, limit: int = SAMPLE) -> InvariantResult:
    """Rows whose reference names no row of the referenced table."""
    out = InvariantResult("no_orphan_references", table.table, limit=limit)
    join, label = row_label_sql(table)
    for c in table.columns:
        if not c.ref_table or isinstance(c.kind, RowId):
            continue
        cond = (f"t.{c.name} IS NOT NULL AND NOT EXISTS "
                f"(SELECT 1 FROM public.{c.ref_table} r WHERE r.id = t.{c.name})")
        n = conn.execute(f"SELECT count(*) FROM public.{table.table} t WHERE {cond}").fetchone()[0]
        out.measures[f"orphans_{c.name}"] = n
        if not n:
            continue
        out.reasons["orphan_reference"] = out.reasons.get("orphan_reference", 0) + n
        for row, ref in conn.execute(
            f"SELECT {label}, t.{c.name}::text FROM public.{table.table} t{join} WHERE {cond} "
            f"ORDER BY 1 LIMIT %s", [limit]).fetchall():
            if len(out.violations) < limit:
                out.violations.append(Violation("orphan_reference", row, f"{c.name} -> {c.ref_table} {ref} does not exist"))
    out.measures["orphan_references"] = out.reasons.get("orphan_reference", 0)
    return out


def _ref_columns(loader: LoaderSpec):
    """(table, column) of every reference a document holds, except the enclosing-document
    link of child rows and deferred references to other loaders' tables (those are the
    remap's, checked by its ``reference_parity``)."""
    own = set(loader.table_names)
    for t in loader.tables:
        for c in t.columns:
            if not c.ref_table or isinstance(c.kind, RowId) or c.name == t.parent_column:
                continue
            if c.deferred and c.ref_table not in own:
                continue
            yield t, c


def existing_source_ids(source, collection: str, ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` exist as ``_id`` in ``collection`` of the source."""
    wanted = {i for i in ids}
    if not wanted:
        return set()
    if getattr(source, "kind", "") == "dump":
        found = set()
        for batch in source.iter_batches(collection, batch_size=20000):
            for raw in batch.docs:
                k = raw_id_hex(raw)
                if k in wanted:
                    found.add(k)
        return found
    found = set()
    for chunk in _chunks(sorted(wanted), 1000):
        found |= {raw_id_hex(r) for r in source.find_by_ids(collection, [ObjectId(i) for i in chunk])}
    return found


def _references(loader: LoaderSpec, source, refs) -> Iterator[tuple[str, str, str, Any]]:
    """(document _id, where, referenced table, raw value) of every reference in the source."""
    for batch in source.iter_batches(loader.collection, batch_size=5000):
        for raw in batch.docs:
            ident = raw_id(raw)
            if not isinstance(ident, ObjectId):
                continue
            try:
                doc = decode(raw)
            except Exception:
                continue
            key = str(ident)
            for t, c in refs:
                for src, idx in t.rows.sources(doc):
                    try:
                        v = resolve_source(c, src, doc, idx, {})
                    except Exception:
                        continue
                    if v is None or v is MISSING:
                        continue
                    field_name = f"{t.rows.path}[{idx}].{c.path}" if t.rows.mode == "array" else (c.path or c.name)
                    yield key, f"{t.table}.{c.name} ({field_name})", c.ref_table, v


def dangling_source_references(loader: LoaderSpec, source, conn: psycopg.Connection, *,
                               limit: int = SAMPLE) -> InvariantResult:
    """References in the Mongo documents whose target is not in PostgreSQL, one by one.

    Each must belong to a quarantined document (the loader refuses it as
    ``missing_reference``): then it is surfaced (reason ``dangling_reference``, a warning);
    one whose document is *not* quarantined is an error (``dangling_reference_not_quarantined``).
    One pass collects the distinct referenced ids (memory: distinct targets, not references);
    a second pass, only if some target is missing, lists the documents holding them.
    """
    out = InvariantResult("source_references_resolve", loader.root.table, limit=limit,
                          warnings=frozenset({"dangling_reference", "reference_not_object_id"}))
    refs = list(_ref_columns(loader))
    quarantined: set[str] = set()
    for name in [loader.name, *(r.name for r in loader.remaps)]:
        q = QuarantineIndex(conn, name)
        quarantined |= q.ids() | set(q.dupes)
    targets: dict[str, set[str]] = defaultdict(set)
    n_refs, n_bad = 0, 0
    for _, _, ref_table, v in _references(loader, source, refs):
        n_refs += 1
        try:
            targets[ref_table].add(legacy_hex(v))
        except Reject:
            n_bad += 1
    out.measures["references_checked"] = n_refs
    missing: dict[str, dict[str, str]] = {}  # table -> legacy id -> why
    for ref_table, ids in targets.items():
        present: set[str] = set()
        for chunk in _chunks(sorted(ids)):
            present |= {r[0] for r in conn.execute(
                f"SELECT legacy_object_id FROM public.{ref_table} WHERE legacy_object_id = ANY(%s)", [chunk]).fetchall()}
        absent = ids - present
        if absent:
            collection = all_tables()[ref_table][0].collection if ref_table in all_tables() else None
            in_source = existing_source_ids(source, collection, absent) if collection else set()
            missing[ref_table] = {r: "quarantined or not loaded" if r in in_source
                                  else f"absent from Mongo {collection or ref_table}" for r in absent}
    found: list[tuple[str, str, str]] = []  # (document, reason-free detail, kind)
    if missing or n_bad:
        for key, where, ref_table, v in _references(loader, source, refs):
            try:
                ref = legacy_hex(v)
            except Reject:
                found.append((key, f"{where} = {repr(v)[:60]}: not an ObjectId", "reference_not_object_id"))
                continue
            why = missing.get(ref_table, {}).get(ref)
            if why is not None:
                found.append((key, f"{where} -> {ref_table} {ref}: {why}", "dangling_reference"))
    for key, detail, kind in sorted(found):
        out.add(kind if key in quarantined else "dangling_reference_not_quarantined", key, detail)
    out.measures["dangling_references"] = len(found)
    out.measures["dangling_not_quarantined"] = out.reasons.get("dangling_reference_not_quarantined", 0)
    return out


# --- business rules ----------------------------------------------------------------------

@dataclass(frozen=True)
class BusinessRule:
    name: str
    table: str
    description: str
    reason: str
    sql: str  # rows (subject, detail)
    guard_index: str | None = None  # the unique index that enforces it, if any


BUSINESS_RULES = (
    BusinessRule(
        "one_primary_address_per_user", "addresses", "at most one primary address per user",
        "several_primary_addresses",
        """SELECT u.legacy_object_id, 'primary addresses ' || string_agg(a.legacy_object_id, ', ' ORDER BY a.legacy_object_id)
           FROM public.addresses a JOIN public.users u ON u.id = a.user_id
           WHERE a.is_primary GROUP BY u.legacy_object_id HAVING count(*) > 1 ORDER BY 1""",
        guard_index="addresses_one_primary_per_user_uq",
    ),
    BusinessRule(
        "active_category_names_unique", "categories", "active category names unique by lower(btrim(name))",
        "duplicate_active_name",
        """SELECT string_agg(legacy_object_id, ', ' ORDER BY legacy_object_id),
                  'active categories named ' || quote_literal(lower(btrim(name)))
           FROM public.categories WHERE is_active GROUP BY lower(btrim(name)) HAVING count(*) > 1 ORDER BY 1""",
        guard_index="categories_active_name_norm_uq",
    ),
    BusinessRule(
        "selected_offer_belongs_to_request", "purchase_requests",
        "a purchase request's selected offer is one of its own offers", "offer_of_another_request",
        """SELECT p.legacy_object_id, 'selected offer ' || o.legacy_object_id || ' belongs to purchase request '
                  || coalesce(op.legacy_object_id, 'none')
           FROM public.purchase_requests p JOIN public.seller_offers o ON o.id = p.selected_offer_id
           LEFT JOIN public.purchase_requests op ON op.id = o.purchase_request_id
           WHERE o.purchase_request_id IS DISTINCT FROM p.id ORDER BY 1""",
    ),
)


def rules_for(table: str) -> list[BusinessRule]:
    return [r for r in BUSINESS_RULES if r.table == table]


def index_exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", [f"public.{name}"]).fetchone()[0]


def business_rule(conn: psycopg.Connection, rule: BusinessRule, *, limit: int = SAMPLE) -> InvariantResult:
    out = InvariantResult(rule.name, rule.table, limit=limit)
    rows = conn.execute(rule.sql).fetchall()
    for subject, detail in rows:
        out.add(rule.reason, subject, detail)
    out.measures["violations"] = len(rows)
    if rule.guard_index and not index_exists(conn, rule.guard_index):
        out.add("guard_index_missing", rule.guard_index, f"the unique index enforcing '{rule.description}' is gone")
    return out


def enum_values(conn: psycopg.Connection, table: TableSpec, *, limit: int = SAMPLE) -> InvariantResult:
    """Enum columns hold their PostgreSQL type, whose labels are the spec's values, and
    every stored value is one of them."""
    out = InvariantResult("enum_values_valid", table.table, limit=limit)
    types = dict(conn.execute(
        "SELECT column_name, udt_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = %s", [table.table]).fetchall())
    label, join = row_label_sql(table)[1], row_label_sql(table)[0]
    for c in table.columns:
        if not isinstance(c.kind, Enum):
            continue
        kind: Enum = c.kind
        actual_type = types.get(c.name)
        if actual_type != kind.pg_type:
            out.add("column_type_differs", f"{table.table}.{c.name}", f"type {actual_type}, spec says {kind.pg_type}")
        labels = conn.execute(
            "SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_type t "
            "JOIN pg_enum e ON e.enumtypid = t.oid WHERE t.typname = %s", [kind.pg_type]).fetchone()[0] or []
        if list(labels) != list(kind.values):
            out.add("type_labels_differ", kind.pg_type, f"PostgreSQL {labels}, spec {list(kind.values)}")
        rows = conn.execute(
            f"SELECT {label}, t.{c.name}::text FROM public.{table.table} t{join} "
            f"WHERE t.{c.name} IS NOT NULL AND NOT (t.{c.name}::text = ANY(%s)) ORDER BY 1",
            [list(kind.values)]).fetchall()
        for subject, value in rows:
            out.add("invalid_enum_value", subject, f"{c.name} = {value!r} is not one of {list(kind.values)}")
        out.measures[f"invalid_{c.name}"] = len(rows)
    return out


# --- the funds ledger ----------------------------------------------------------------------

LEDGER = "funds_ledger_entries"
# Trigger type bits of pg_trigger.tgtype.
_TG_ROW, _TG_BEFORE, _TG_DELETE, _TG_UPDATE, _TG_TRUNCATE = 1, 2, 8, 16, 32


class _Probe(Exception):
    """Leaves the probe transaction, rolling everything back."""


def ledger_immutability(conn: psycopg.Connection, *, lock_timeout_ms: int = 10000, tries: int = 3) -> InvariantResult:
    """The append-only triggers exist, are enabled, and refuse UPDATE, DELETE and TRUNCATE.

    The attempts run in one transaction that is always rolled back, on a probe row inserted
    there (so they never depend on, or touch, real entries). TRUNCATE needs the table's
    exclusive lock: a probe that waited ``lock_timeout_ms`` for it (other checks reading the
    ledger) is tried again, up to ``tries`` times."""
    for _ in range(tries - 1):
        result = _probe_immutability(conn, lock_timeout_ms)
        if "probe_lock_timeout" not in result.reasons:
            return result
    return _probe_immutability(conn, lock_timeout_ms)


def _probe_immutability(conn: psycopg.Connection, lock_timeout_ms: int) -> InvariantResult:
    out = InvariantResult("ledger_immutable", LEDGER)
    triggers = conn.execute(
        "SELECT tgname, tgtype, tgenabled FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
        [f"public.{LEDGER}"]).fetchall()
    for op, bit, row in (("UPDATE", _TG_UPDATE, True), ("DELETE", _TG_DELETE, True), ("TRUNCATE", _TG_TRUNCATE, False)):
        guards = [(n, e) for n, t, e in triggers if t & bit and t & _TG_BEFORE and bool(t & _TG_ROW) == row]
        if not guards:
            out.add("trigger_missing", op, f"no BEFORE {op} trigger on {LEDGER}")
        elif all(e == "D" for _, e in guards):
            out.add("trigger_disabled", op, f"{', '.join(n for n, _ in guards)} disabled")
    out.measures["guard_triggers"] = len(triggers)
    probe = f"probe-{uuid.uuid4()}"
    outcomes: dict[str, str] = {}
    try:
        with conn.transaction():
            conn.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
            conn.execute(
                f"INSERT INTO public.{LEDGER} (id, legacy_object_id, account, currency, direction, amount, entry_type, "
                "description, created_at) VALUES (gen_random_uuid(), %s, 'probe', 'USDT', 'debit', 1, 'adjustment', "
                "'immutability probe (rolled back)', now())", [probe])
            for op, sql in (("UPDATE", f"UPDATE public.{LEDGER} SET description = 'changed' WHERE legacy_object_id = %s"),
                            ("DELETE", f"DELETE FROM public.{LEDGER} WHERE legacy_object_id = %s"),
                            ("TRUNCATE", f"TRUNCATE public.{LEDGER}")):
                try:
                    with conn.transaction():
                        conn.execute(sql, [probe] if "%s" in sql else None)
                    outcomes[op] = "allowed"
                except psycopg.errors.RestrictViolation:
                    outcomes[op] = "refused"
                    out.measures[f"{op.lower()}_refused"] = 1
                except psycopg.errors.LockNotAvailable:
                    outcomes[op] = "lock_timeout"
                except psycopg.Error as e:
                    outcomes[op] = f"failed otherwise: {type(e).__name__}: {str(e).strip()[:120]}"
            raise _Probe
    except _Probe:
        pass
    for op in ("UPDATE", "DELETE", "TRUNCATE"):
        o = outcomes.get(op, "not attempted")
        if o != "refused":
            out.measures[f"{op.lower()}_refused"] = 0
            reason = "probe_lock_timeout" if o == "lock_timeout" else f"{op.lower()}_not_refused"
            out.add(reason, op, f"{op} on {LEDGER} was {o} (in a rolled-back transaction)")
    return out


def _decimal(v: Any) -> Decimal | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, Decimal128):
        d = v.to_decimal()
    elif isinstance(v, float):
        d = Decimal(repr(v))
    elif isinstance(v, (int, Decimal)):
        d = Decimal(v)
    else:
        return None
    return d if d.is_finite() else None


BalanceKey = tuple[str, str | None, str]  # (account, user legacy id, currency)


def source_balances(loader: LoaderSpec, source, conn: psycopg.Connection) -> tuple[dict[BalanceKey, Decimal], dict[BalanceKey, Decimal], int]:
    """Mongo's ledger balances (credits - debits) per (account, user, currency): of the
    entries the loader accepted, and apart, of the quarantined ones; and how many entries
    could not be read at all (also quarantined by the loader)."""
    t = loader.root
    cols = {n: t.column(n) for n in ("account", "user_id", "currency", "direction", "amount")}
    qindex = QuarantineIndex(conn, loader.name)
    loaded: dict[BalanceKey, Decimal] = defaultdict(Decimal)
    quarantined: dict[BalanceKey, Decimal] = defaultdict(Decimal)
    unreadable = 0
    for batch in source.iter_batches(loader.collection, batch_size=5000):
        for raw in batch.docs:
            ident = raw_id(raw)
            skip = qindex.skip(str(ident) if isinstance(ident, ObjectId) else repr(ident)) or not isinstance(ident, ObjectId)
            try:
                doc = decode(raw)
                v = {n: resolve_source(c, doc, doc, 0, {}) for n, c in cols.items()}
                user = None if v["user_id"] in (None, MISSING) else legacy_hex(v["user_id"])
                amount = _decimal(v["amount"])
                if amount is None or v["direction"] not in ("debit", "credit"):
                    raise ValueError("unreadable entry")
                key = (str(v["account"]), user, str(v["currency"]))
            except Exception:
                unreadable += 1
                continue
            signed = amount if v["direction"] == "credit" else -amount
            (quarantined if skip else loaded)[key] += signed
    return dict(loaded), dict(quarantined), unreadable


def target_balances(conn: psycopg.Connection) -> dict[BalanceKey, Decimal]:
    rows = conn.execute(
        f"SELECT f.account, u.legacy_object_id, f.currency::text, "
        f"sum(CASE f.direction WHEN 'credit' THEN f.amount ELSE -f.amount END) "
        f"FROM public.{LEDGER} f LEFT JOIN public.users u ON u.id = f.user_id GROUP BY 1, 2, 3").fetchall()
    return {(a, u, c): Decimal(s) for a, u, c, s in rows}


def balance_label(key: BalanceKey) -> str:
    account, user, currency = key
    return f"{account}/{user or '-'}/{currency}"


def ledger_balances(loader: LoaderSpec, source, conn: psycopg.Connection, *, limit: int = SAMPLE) -> InvariantResult:
    """Balance per (account, user, currency) in PostgreSQL = Mongo's (accepted entries).

    Entries the loader quarantined are reported apart (their amounts per key), never
    silently mixed in: a balance differing by exactly them is ``balance_differs_by_quarantine``."""
    out = InvariantResult("ledger_balances_match_source", LEDGER, limit=limit,
                          warnings=frozenset({"entries_quarantined"}))
    expected, quarantined, unreadable = source_balances(loader, source, conn)
    actual = target_balances(conn)
    keys = sorted(set(expected) | set(actual), key=lambda k: (k[0], k[1] or "", k[2]))
    total_delta = Decimal(0)
    for k in keys:
        e, a = expected.get(k, Decimal(0)), actual.get(k, Decimal(0))
        if e != a:
            total_delta += abs(a - e)
            out.add("balance_mismatch", balance_label(k), f"PostgreSQL {a.normalize():f}, Mongo {e.normalize():f}, "
                    f"delta {(a - e).normalize():f}")
    for k, amount in sorted(quarantined.items(), key=lambda kv: balance_label(kv[0])):
        out.add("entries_quarantined", balance_label(k), f"quarantined entries sum to {amount.normalize():f} (not migrated)")
    out.measures.update({
        "balances_compared": len(keys),
        "balances_differing": out.reasons.get("balance_mismatch", 0),
        "absolute_delta": float(total_delta),
        "unreadable_entries": unreadable,
        "balances_with_quarantined_entries": len(quarantined),
    })
    return out


PAYMENT_SUMS_SQL = f"""
WITH e AS (
    SELECT f.payment_id,
           count(*) AS entries,
           coalesce(sum(f.amount) FILTER (WHERE f.direction = 'debit'), 0) AS debits,
           coalesce(sum(f.amount) FILTER (WHERE f.direction = 'credit'), 0) AS credits,
           coalesce(sum(f.amount) FILTER (WHERE f.entry_type = 'escrow_hold' AND f.direction = 'credit'
                                           AND f.account = 'escrow'), 0) AS held,
           coalesce(sum(f.amount) FILTER (WHERE f.entry_type = 'escrow_hold' AND f.direction = 'debit'
                                           AND f.account = 'buyer_wallet'), 0) AS hold_debit,
           coalesce(sum(f.amount) FILTER (WHERE f.account = 'escrow' AND f.direction = 'debit'), 0) AS escrow_out,
           coalesce(sum(f.amount) FILTER (WHERE f.direction = 'credit' AND f.account IN ('seller_wallet', 'platform_fees')
                                           AND f.entry_type IN ('escrow_release', 'fee')), 0) AS paid_out,
           coalesce(sum(f.amount) FILTER (WHERE f.direction = 'credit' AND f.account = 'platform_fees'), 0) AS fees,
           coalesce(sum(f.amount) FILTER (WHERE f.entry_type = 'refund' AND f.direction = 'credit'
                                           AND f.account = 'buyer_wallet'), 0) AS refunded,
           count(*) FILTER (WHERE f.currency <> p.currency) AS other_currency,
           count(*) FILTER (WHERE (f.account = 'buyer_wallet' AND f.user_id IS DISTINCT FROM p.payer_id)
                               OR (f.account = 'seller_wallet' AND f.user_id IS DISTINCT FROM p.payee_id)
                               OR (f.account IN ('escrow', 'platform_fees', 'external') AND f.user_id IS NOT NULL))
               AS wrong_user
    FROM public.{LEDGER} f JOIN public.payments p ON p.id = f.payment_id
    GROUP BY f.payment_id
)
SELECT p.legacy_object_id, p.status::text, p.amount, p.currency::text, coalesce(e.entries, 0),
       coalesce(e.debits, 0), coalesce(e.credits, 0), coalesce(e.held, 0), coalesce(e.hold_debit, 0),
       coalesce(e.escrow_out, 0), coalesce(e.paid_out, 0), coalesce(e.fees, 0), coalesce(e.refunded, 0),
       coalesce(e.other_currency, 0), coalesce(e.wrong_user, 0)
FROM public.payments p LEFT JOIN e ON e.payment_id = p.id
"""

SETTLED = ("held", "released", "refunded")


def payment_violations(status: str, amount: Decimal, entries: int, debits: Decimal, credits: Decimal,
                       held: Decimal, hold_debit: Decimal, escrow_out: Decimal, paid_out: Decimal,
                       fees: Decimal, refunded: Decimal, other_currency: int, wrong_user: int) -> list[tuple[str, str]]:
    """(reason, detail) of one payment's entries against the double-entry model."""
    out = []
    if debits != credits:
        out.append(("unbalanced_payment", f"debits {debits:f} != credits {credits:f}"))
    if other_currency:
        out.append(("currency_mismatch", f"{other_currency} entries in another currency than the payment"))
    if wrong_user:
        out.append(("wrong_account_user", f"{wrong_user} wallet entries not of the payer/payee (or a user on a house account)"))
    if status not in SETTLED:
        if entries:
            out.append(("entries_for_unsettled_payment", f"status {status} has {entries} entries"))
        return out
    if held != amount or hold_debit != amount:
        out.append(("hold_differs_from_amount", f"escrow_hold credit {held:f} / debit {hold_debit:f}, payment amount {amount:f}"))
    if status == "held" and escrow_out:
        out.append(("escrow_released_while_held", f"escrow debited {escrow_out:f} on a held payment"))
    if status == "released":
        if escrow_out != amount or paid_out != amount:
            out.append(("release_differs_from_amount", f"escrow out {escrow_out:f}, seller + fee {paid_out:f}, amount {amount:f}"))
        if not (0 < fees < amount):
            out.append(("fee_out_of_range", f"fee {fees:f} not in (0, {amount:f})"))
    if status == "refunded" and (escrow_out != amount or refunded != amount):
        out.append(("refund_differs_from_amount", f"escrow out {escrow_out:f}, refunded {refunded:f}, amount {amount:f}"))
    return out


def ledger_payment_sums(conn: psycopg.Connection, *, limit: int = SAMPLE) -> InvariantResult:
    """Per payment: debits = credits, the escrow hold equals the payment's amount (same
    currency, payer's wallet), release or refund take exactly that out of escrow."""
    out = InvariantResult("ledger_payment_sums", LEDGER, limit=limit)
    rows = conn.execute(PAYMENT_SUMS_SQL + " ORDER BY 1").fetchall()
    n_entries = 0
    for legacy, status, amount, currency, entries, *sums in rows:
        n_entries += entries
        for reason, detail in payment_violations(status, Decimal(amount), entries, *(Decimal(s) for s in sums[:8]),
                                                 int(sums[8]), int(sums[9])):
            out.add(reason, legacy, f"{status} {Decimal(amount).normalize():f} {currency}: {detail}")
    out.measures.update({"payments_checked": len(rows), "payment_entries": n_entries,
                         "payments_violating": len({v.subject for v in out.violations})})
    # Entries naming no payment: deposits only (debit external / credit a buyer wallet).
    (n,) = conn.execute(
        f"SELECT count(*) FROM public.{LEDGER} WHERE payment_id IS NULL AND entry_type <> 'deposit'").fetchone()
    if n:
        for (legacy,) in conn.execute(
                f"SELECT legacy_object_id FROM public.{LEDGER} WHERE payment_id IS NULL AND entry_type <> 'deposit' "
                f"ORDER BY 1 LIMIT %s", [limit]).fetchall():
            out.add("entry_without_payment", legacy, "only deposits have no payment")
        out.reasons["entry_without_payment"] = n
    (unbalanced,) = conn.execute(
        f"SELECT count(*) FROM (SELECT currency FROM public.{LEDGER} GROUP BY currency "
        f"HAVING sum(CASE direction WHEN 'credit' THEN amount ELSE -amount END) <> 0) s").fetchone()
    if unbalanced:
        for cur, net in conn.execute(
                f"SELECT currency::text, sum(CASE direction WHEN 'credit' THEN amount ELSE -amount END) "
                f"FROM public.{LEDGER} GROUP BY 1 HAVING sum(CASE direction WHEN 'credit' THEN amount ELSE -amount END) <> 0 "
                f"ORDER BY 1").fetchall():
            out.add("ledger_unbalanced", cur, f"credits - debits = {Decimal(net).normalize():f}")
    return out


# (table, column): the money CHECKs (0013) the ledger relies on.
MONEY_CHECKS = (("payments", "amount"), (LEDGER, "amount"))


def money_checks(conn: psycopg.Connection, *, limit: int = SAMPLE) -> InvariantResult:
    """Each money column has a validated CHECK (amount > 0), and every row satisfies it."""
    out = InvariantResult("ledger_money_checks", LEDGER, limit=limit)
    for table, column in MONEY_CHECKS:
        found = conn.execute(
            "SELECT conname, convalidated, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'c' AND pg_get_constraintdef(oid) ~ %s",
            [f"public.{table}", rf"\m{column}\M\s*>\s*\(?0"]).fetchall()
        if not found:
            out.add("check_missing", f"{table}.{column}", f"no CHECK ({column} > 0) on {table}")
        for name, validated, definition in found:
            if not validated:
                out.add("check_not_validated", name, f"{definition} is NOT VALID: older rows were never checked")
        rows = conn.execute(
            f"SELECT legacy_object_id, {column} FROM public.{table} WHERE NOT ({column} > 0) ORDER BY 1").fetchall()
        for legacy, value in rows:
            out.add("amount_not_positive", legacy, f"{table}.{column} = {value}")
        out.measures[f"{table}_non_positive"] = len(rows)
    return out


SNAPSHOT = "migration.ledger_entry_snapshot"
ENTRY_HASH = "md5(f::text)"  # the whole row, every column


def ledger_append_only(conn: psycopg.Connection, run_id: str, *, limit: int = SAMPLE) -> InvariantResult:
    """Entries never change or disappear across runs: each entry's row hash is recorded the
    first time it is seen (sql/0021) and compared on every later run; new entries are then
    recorded (never an existing one rewritten)."""
    out = InvariantResult("ledger_append_only", LEDGER, limit=limit)
    with conn.transaction():
        changed = conn.execute(
            f"SELECT s.legacy_object_id, s.first_seen_run FROM {SNAPSHOT} s JOIN public.{LEDGER} f "
            f"ON f.legacy_object_id = s.legacy_object_id WHERE s.entry_hash <> {ENTRY_HASH} ORDER BY 1").fetchall()
        for legacy, run in changed:
            out.add("entry_changed", legacy, f"differs from the entry recorded by run {run}")
        gone = conn.execute(
            f"SELECT s.legacy_object_id, s.first_seen_run FROM {SNAPSHOT} s WHERE NOT EXISTS "
            f"(SELECT 1 FROM public.{LEDGER} f WHERE f.legacy_object_id = s.legacy_object_id) ORDER BY 1").fetchall()
        for legacy, run in gone:
            out.add("entry_deleted", legacy, f"recorded by run {run}, no longer in {LEDGER}")
        recorded = conn.execute(
            f"INSERT INTO {SNAPSHOT} (legacy_object_id, entry_id, entry_hash, first_seen_run) "
            f"SELECT f.legacy_object_id, f.id, {ENTRY_HASH}, %s FROM public.{LEDGER} f "
            f"ON CONFLICT (legacy_object_id) DO NOTHING", [run_id]).rowcount
        (total,) = conn.execute(f"SELECT count(*) FROM {SNAPSHOT}").fetchone()
    out.measures.update({"entries_recorded_before": total - recorded, "entries_recorded_now": recorded,
                         "entries_changed": len(changed), "entries_deleted": len(gone)})
    return out


def violations_table(result: InvariantResult) -> list[tuple[str, str, str]]:
    return [(v.reason, v.subject, v.detail) for v in result.violations]


def all_reasons(results: Iterable[InvariantResult]) -> Mapping[str, int]:
    out: dict[str, int] = defaultdict(int)
    for r in results:
        for k, n in r.reasons.items():
            out[k] += n
    return dict(out)
