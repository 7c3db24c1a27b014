"""The funds-ledger book, read from the ledger loader's spec (``LoaderSpec.ledger``: its
accounts, its payments table, its money columns):

* the immutability triggers exist and refuse UPDATE, DELETE and TRUNCATE (probed in a
  rolled-back transaction; a refusal by privilege counts as a refusal);
* balances per (account, user, currency) equal Mongo's;
* entries per payment follow the double-entry model;
* the money CHECKs exist, are validated and hold;
* entries never change across runs (``migration.ledger_entry_snapshot``, sql/0021).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection
from decimal import Decimal
from typing import Any

import psycopg
from bson import Decimal128

from migration_assets.source.documents import Source
from migration_assets.source.scan import scan
from migration_assets.specs.kinds import legacy_hex
from migration_assets.specs.model import MISSING, LedgerSpec, LoaderSpec, resolve_source
from migration_assets.specs.registry import all_loaders
from migration_assets.target.bookkeeping import SNAPSHOT, record_ledger_snapshot
from migration_assets.verify.acknowledged import held_acknowledgements
from migration_assets.verify.invariants.result import SAMPLE, InvariantResult
from migration_assets.verify.quarantined import QuarantineIndex


def ledger_loader() -> LoaderSpec | None:
    """The loader whose spec declares a ledger (None: this platform migrates none)."""
    return next((l for l in all_loaders() if l.ledger is not None), None)


def book(loader: LoaderSpec) -> LedgerSpec:
    assert loader.ledger is not None, f"{loader.name} is not a ledger"
    return loader.ledger


# Trigger type bits of pg_trigger.tgtype.
_TG_ROW, _TG_BEFORE, _TG_DELETE, _TG_UPDATE, _TG_TRUNCATE = 1, 2, 8, 16, 32


class _Probe(Exception):
    """Leaves the probe transaction, rolling everything back."""


def ledger_immutability(conn: psycopg.Connection, table: str, *, lock_timeout_ms: int = 10000,
                        tries: int = 3) -> InvariantResult:
    """The append-only triggers exist, are enabled, and refuse UPDATE, DELETE and TRUNCATE.

    The attempts run in one transaction that is always rolled back, on a probe row inserted
    there (so they never depend on, or touch, real entries). TRUNCATE needs the table's
    exclusive lock: a probe that waited ``lock_timeout_ms`` for it (other checks reading the
    ledger) is tried again, up to ``tries`` times."""
    for _ in range(tries - 1):
        result = _probe_immutability(conn, table, lock_timeout_ms)
        if "probe_lock_timeout" not in result.reasons:
            return result
    return _probe_immutability(conn, table, lock_timeout_ms)


def _probe_immutability(conn: psycopg.Connection, table: str, lock_timeout_ms: int) -> InvariantResult:
    out = InvariantResult("ledger_immutable", table)
    triggers = conn.execute(
        "SELECT tgname, tgtype, tgenabled FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
        [f"public.{table}"]).fetchall()
    for op, bit, row in (("UPDATE", _TG_UPDATE, True), ("DELETE", _TG_DELETE, True), ("TRUNCATE", _TG_TRUNCATE, False)):
        guards = [(n, e) for n, t, e in triggers if t & bit and t & _TG_BEFORE and bool(t & _TG_ROW) == row]
        if not guards:
            out.add("trigger_missing", op, f"no BEFORE {op} trigger on {table}")
        elif all(e == "D" for _, e in guards):
            out.add("trigger_disabled", op, f"{', '.join(n for n, _ in guards)} disabled")
    out.measures["guard_triggers"] = len(triggers)
    probe = f"probe-{uuid.uuid4()}"
    outcomes: dict[str, str] = {}
    try:
        with conn.transaction():
            conn.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
            conn.execute(
                f"INSERT INTO public.{table} (id, legacy_object_id, account, currency, direction, amount, entry_type, "
                "description, created_at) VALUES (gen_random_uuid(), %s, 'probe', 'USDT', 'debit', 1, 'adjustment', "
                "'immutability probe (rolled back)', now())", [probe])
            for op, sql in (("UPDATE", f"UPDATE public.{table} SET description = 'changed' WHERE legacy_object_id = %s"),
                            ("DELETE", f"DELETE FROM public.{table} WHERE legacy_object_id = %s"),
                            ("TRUNCATE", f"TRUNCATE public.{table}")):
                try:
                    with conn.transaction():
                        conn.execute(sql, [probe] if "%s" in sql else None)
                    outcomes[op] = "allowed"
                except psycopg.errors.RestrictViolation:  # by the trigger
                    outcomes[op] = "refused"
                    out.measures[f"{op.lower()}_refused"] = 1
                except psycopg.errors.InsufficientPrivilege:  # by privilege, before any trigger
                    outcomes[op] = "refused"
                    out.measures[f"{op.lower()}_refused"] = 1
                    out.measures[f"{op.lower()}_refused_by_privilege"] = 1
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
            out.add(reason, op, f"{op} on {table} was {o} (in a rolled-back transaction)")
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


def source_balances(loader: LoaderSpec, source: Source, conn: psycopg.Connection, exclude: Collection[str] = ()
                    ) -> tuple[dict[BalanceKey, Decimal], dict[BalanceKey, Decimal], int]:
    """Mongo's ledger balances (credits - debits) per (account, user, currency): of the
    entries the loader accepted, and apart, of the quarantined ones; and how many entries
    could not be read at all (also quarantined by the loader)."""
    t = loader.root
    cols = {n: t.column(n) for n in ("account", "user_id", "currency", "direction", "amount")}
    qindex = QuarantineIndex(conn, loader.name)
    loaded: dict[BalanceKey, Decimal] = defaultdict(Decimal)
    quarantined: dict[BalanceKey, Decimal] = defaultdict(Decimal)
    unreadable = 0
    for d in scan(source, loader.collection, skip=qindex.scanner()):
        if d.key in exclude:
            continue
        try:
            doc = d.doc
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
        (quarantined if d.skipped else loaded)[key] += signed
    return dict(loaded), dict(quarantined), unreadable


def target_balances(conn: psycopg.Connection, loader: LoaderSpec, exclude: Collection[str] = ()
                    ) -> dict[BalanceKey, Decimal]:
    table, users = loader.root.table, loader.root.column("user_id").ref_table
    rows = conn.execute(
        f"SELECT f.account, u.legacy_object_id, f.currency::text, "
        f"sum(CASE f.direction WHEN 'credit' THEN f.amount ELSE -f.amount END) "
        f"FROM public.{table} f LEFT JOIN public.{users} u ON u.id = f.user_id "
        f"WHERE f.legacy_object_id <> ALL(%s) GROUP BY 1, 2, 3", [list(exclude)]).fetchall()
    return {(a, u, c): Decimal(s) for a, u, c, s in rows}


def balance_label(key: BalanceKey) -> str:
    account, user, currency = key
    return f"{account}/{user or '-'}/{currency}"


def ledger_balances(loader: LoaderSpec, source: Source, conn: psycopg.Connection, *,
                    limit: int = SAMPLE) -> InvariantResult:
    """Balance per (account, user, currency) in PostgreSQL = Mongo's (accepted entries).

    Entries the loader quarantined are reported apart (their amounts per key), never
    silently mixed in: a balance differing by exactly them is ``balance_differs_by_quarantine``."""
    table = loader.root.table
    out = InvariantResult("ledger_balances_match_source", table, limit=limit,
                          warnings=frozenset({"entries_quarantined"}))
    held = held_acknowledgements(loader, source, conn)  # left out of both sides, listed apart
    expected, quarantined, unreadable = source_balances(loader, source, conn, held)
    actual = target_balances(conn, loader, held)
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
    for legacy, ack in sorted(held.items()):
        out.add("acknowledged_conflict", legacy, f"{ack.differs}; acknowledged by {ack.acknowledged_by}: {ack.reason}")
    out.measures.update({
        "balances_compared": len(keys),
        "balances_differing": out.reasons.get("balance_mismatch", 0),
        "absolute_delta": float(total_delta),
        "unreadable_entries": unreadable,
        "balances_with_quarantined_entries": len(quarantined),
    })
    return out


def payment_sums_sql(loader: LoaderSpec) -> str:
    """Per payment of the ledger's payments table: entries, debits, credits, the escrow hold,
    what left escrow, fees, refunds, and entries in another currency or of another user.
    Entry types and payment statuses are labels of the ledger's and payments' enums."""
    a, table, payments = book(loader).accounts, loader.root.table, book(loader).payments_table
    house = ", ".join(f"'{x}'" for x in a.house)
    return f"""
WITH e AS (
    SELECT f.payment_id,
           count(*) AS entries,
           coalesce(sum(f.amount) FILTER (WHERE f.direction = 'debit'), 0) AS debits,
           coalesce(sum(f.amount) FILTER (WHERE f.direction = 'credit'), 0) AS credits,
           coalesce(sum(f.amount) FILTER (WHERE f.entry_type = 'escrow_hold' AND f.direction = 'credit'
                                           AND f.account = '{a.escrow}'), 0) AS held,
           coalesce(sum(f.amount) FILTER (WHERE f.entry_type = 'escrow_hold' AND f.direction = 'debit'
                                           AND f.account = '{a.payer_wallet}'), 0) AS hold_debit,
           coalesce(sum(f.amount) FILTER (WHERE f.account = '{a.escrow}' AND f.direction = 'debit'), 0) AS escrow_out,
           coalesce(sum(f.amount) FILTER (WHERE f.direction = 'credit' AND f.account IN ('{a.payee_wallet}', '{a.fees}')
                                           AND f.entry_type IN ('escrow_release', 'fee')), 0) AS paid_out,
           coalesce(sum(f.amount) FILTER (WHERE f.direction = 'credit' AND f.account = '{a.fees}'), 0) AS fees,
           coalesce(sum(f.amount) FILTER (WHERE f.entry_type = 'refund' AND f.direction = 'credit'
                                           AND f.account = '{a.payer_wallet}'), 0) AS refunded,
           count(*) FILTER (WHERE f.currency <> p.currency) AS other_currency,
           count(*) FILTER (WHERE (f.account = '{a.payer_wallet}' AND f.user_id IS DISTINCT FROM p.payer_id)
                               OR (f.account = '{a.payee_wallet}' AND f.user_id IS DISTINCT FROM p.payee_id)
                               OR (f.account IN ({house}) AND f.user_id IS NOT NULL))
               AS wrong_user
    FROM public.{table} f JOIN public.{payments} p ON p.id = f.payment_id
    GROUP BY f.payment_id
)
SELECT p.legacy_object_id, p.status::text, p.amount, p.currency::text, coalesce(e.entries, 0),
       coalesce(e.debits, 0), coalesce(e.credits, 0), coalesce(e.held, 0), coalesce(e.hold_debit, 0),
       coalesce(e.escrow_out, 0), coalesce(e.paid_out, 0), coalesce(e.fees, 0), coalesce(e.refunded, 0),
       coalesce(e.other_currency, 0), coalesce(e.wrong_user, 0)
FROM public.{payments} p LEFT JOIN e ON e.payment_id = p.id
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


def ledger_payment_sums(conn: psycopg.Connection, loader: LoaderSpec, *, limit: int = SAMPLE) -> InvariantResult:
    """Per payment: debits = credits, the escrow hold equals the payment's amount (same
    currency, payer's wallet), release or refund take exactly that out of escrow."""
    table = loader.root.table
    out = InvariantResult("ledger_payment_sums", table, limit=limit)
    rows = conn.execute(payment_sums_sql(loader) + " ORDER BY 1").fetchall()
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
        f"SELECT count(*) FROM public.{table} WHERE payment_id IS NULL AND entry_type <> 'deposit'").fetchone()
    if n:
        for (legacy,) in conn.execute(
                f"SELECT legacy_object_id FROM public.{table} WHERE payment_id IS NULL AND entry_type <> 'deposit' "
                f"ORDER BY 1 LIMIT %s", [limit]).fetchall():
            out.add("entry_without_payment", legacy, "only deposits have no payment")
        out.reasons["entry_without_payment"] = n
    (unbalanced,) = conn.execute(
        f"SELECT count(*) FROM (SELECT currency FROM public.{table} GROUP BY currency "
        f"HAVING sum(CASE direction WHEN 'credit' THEN amount ELSE -amount END) <> 0) s").fetchone()
    if unbalanced:
        for cur, net in conn.execute(
                f"SELECT currency::text, sum(CASE direction WHEN 'credit' THEN amount ELSE -amount END) "
                f"FROM public.{table} GROUP BY 1 HAVING sum(CASE direction WHEN 'credit' THEN amount ELSE -amount END) <> 0 "
                f"ORDER BY 1").fetchall():
            out.add("ledger_unbalanced", cur, f"credits - debits = {Decimal(net).normalize():f}")
    return out


def money_checks(conn: psycopg.Connection, loader: LoaderSpec, *, limit: int = SAMPLE) -> InvariantResult:
    """Each money column the ledger relies on (0013) has a validated CHECK (> 0), and every
    row satisfies it."""
    out = InvariantResult("ledger_money_checks", loader.root.table, limit=limit)
    for table, column in book(loader).money_columns:
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


ENTRY_HASH = "md5(f::text)"  # the whole row, every column


def ledger_append_only(conn: psycopg.Connection, loader: LoaderSpec, run_id: str, *,
                       limit: int = SAMPLE) -> InvariantResult:
    """Entries never change or disappear across runs: each entry's row hash is recorded the
    first time it is seen (sql/0021) and compared on every later run; new entries are then
    recorded (never an existing one rewritten)."""
    table = loader.root.table
    out = InvariantResult("ledger_append_only", table, limit=limit)
    with conn.transaction():
        changed = conn.execute(
            f"SELECT s.legacy_object_id, s.first_seen_run FROM {SNAPSHOT} s JOIN public.{table} f "
            f"ON f.legacy_object_id = s.legacy_object_id WHERE s.entry_hash <> {ENTRY_HASH} ORDER BY 1").fetchall()
        for legacy, run in changed:
            out.add("entry_changed", legacy, f"differs from the entry recorded by run {run}")
        gone = conn.execute(
            f"SELECT s.legacy_object_id, s.first_seen_run FROM {SNAPSHOT} s WHERE NOT EXISTS "
            f"(SELECT 1 FROM public.{table} f WHERE f.legacy_object_id = s.legacy_object_id) ORDER BY 1").fetchall()
        for legacy, run in gone:
            out.add("entry_deleted", legacy, f"recorded by run {run}, no longer in {table}")
        recorded, total = record_ledger_snapshot(conn, table, ENTRY_HASH, run_id)
    out.measures.update({"entries_recorded_before": total - recorded, "entries_recorded_now": recorded,
                         "entries_changed": len(changed), "entries_deleted": len(gone)})
    return out
