"""Payments (with oracle quotes), the double-entry funds ledger, derived destinations and
their sweeps, and release holds. The ledger follows the model documented in
``migration_assets/tables/payments/funds_ledger_entries.py``."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from bson import Decimal128

from migration_assets.generator.world import World

PROVIDERS = ["request_network", "request_network", "amn_scanner", "trezor", "manual"]
# Payment status by the purchase request's status (None: no payment yet).
STATUS_BY_REQUEST = {
    "offer_accepted": ["pending", "pending", "confirming", None],
    "paid": ["held"], "shipped": ["held"], "delivered": ["held"],
    "completed": ["released"],
    "disputed": ["held", "refunded", "refunded"],
}
FEE_RATES = [Decimal("0.01"), Decimal("0.02"), Decimal("0.025"), Decimal("0.03")]
CHAINS = {"ethereum": 60, "tron": 195, "bitcoin": 0, "polygon": 966}
HOLD_REASONS = ["dispute window", "new seller", "high value order", "manual review — yüksek tutar", None]


def dec(value) -> Decimal:
    """A generated amount (Decimal128, or a legacy double) as an exact Decimal."""
    return value.to_decimal() if isinstance(value, Decimal128) else Decimal(repr(value))


def quantum(d: Decimal) -> Decimal:
    return Decimal(1).scaleb(min(d.as_tuple().exponent, -2))


def hexstr(w: World, nbytes: int) -> str:
    return w.rng.getrandbits(8 * nbytes).to_bytes(nbytes, "big").hex()


def later(t: dt.datetime, w: World, max_hours: float) -> dt.datetime:
    return t + dt.timedelta(milliseconds=w.rng.randint(60_000, int(max_hours * 3_600_000)))


def payments(w: World) -> None:
    offers = {o["_id"]: o for o in w.docs["selleroffers"]}
    for pr in w.docs["purchaserequests"]:
        offer = offers.get(pr.get("selectedOfferId"))
        if offer is None or pr["status"] not in STATUS_BY_REQUEST:
            continue
        status = w.choice(STATUS_BY_REQUEST[pr["status"]])
        if status is None:
            continue
        created = w.when(offer["createdAt"], 10)
        if w.chance(0.15):  # an earlier attempt that failed or was cancelled
            _payment(w, pr, offer, w.choice(["failed", "cancelled"]), w.when(offer["createdAt"], 5))
        _payment(w, pr, offer, status, created)
    for _ in range(w.n(12, 2)):  # manual top-ups: no purchase request, no payee
        created = w.when()
        payer = w.choice(w.docs["users"])
        doc = {"_id": w.oid(created), "payer": payer["_id"], "amount": w.money(10, 500),
               "currency": w.choice(["USDT", "USDC", "TRY"]), "status": w.choice(["pending", "failed", "cancelled"]),
               "provider": "manual", "createdAt": created}
        if w.chance(0.5):
            doc["providerReference"] = f"TOPUP-{w.rng.randint(100000, 999999)}"
        w.add("payments", doc)


def _payment(w: World, pr: dict, offer: dict, status: str, created: dt.datetime) -> dict:
    amount = offer["price"]["amount"]
    old = w.chance(0.12)
    doc = {"_id": w.oid(created), "purchaseRequest": pr["_id"], "sellerOffer": offer["_id"], "payer": pr["buyer"],
           "amount": float(dec(amount)) if old else amount,  # payments before Decimal128 hold doubles
           "currency": offer["price"]["currency"], "status": status, "provider": w.choice(PROVIDERS),
           "createdAt": created}
    if status != "pending" or w.chance(0.7):
        doc["payee"] = offer["seller"]
    if not old:
        doc["updatedAt"] = later(created, w, 48)
    if status in ("confirming", "held", "released", "refunded"):
        doc["txHash"] = "0x" + hexstr(w, 32)
        doc["confirmations"] = float(w.rng.randint(1, 40)) if old else w.rng.randint(1, 40)
        doc["providerReference"] = f"pr_{hexstr(w, 6)}"
    if status in ("held", "released", "refunded"):
        doc["paidAt"] = later(created, w, 6)
    if status in ("released", "refunded"):
        doc["releasedAt"] = later(doc["paidAt"], w, 24 * 20)
    if status not in ("failed", "cancelled") and w.chance(0.6):
        doc["quote"] = _quote(w, doc, created)
    return w.add("payments", doc)


def _quote(w: World, payment: dict, created: dt.datetime) -> dict:
    base = dec(payment["amount"])
    rate = Decimal(str(w.rng.uniform(0.5, 40))).quantize(Decimal("0.00000001"))
    quote = {"baseCurrency": payment["currency"], "quoteCurrency": w.choice(["USD", "USD", "TRY", "EUR"]),
             "rate": Decimal128(rate), "baseAmount": Decimal128(base),
             "quoteAmount": Decimal128((base * rate).quantize(Decimal("0.00000001"))),
             "source": w.choice(["chainlink", "coingecko", "binance"]),
             "quotedAt": created - dt.timedelta(seconds=w.rng.randint(5, 600))}
    if w.chance(0.2):
        quote["rate"] = float(rate)  # early oracle code stored the rate as a double
    if w.chance(0.7):
        quote["expiresAt"] = quote["quotedAt"] + dt.timedelta(minutes=15)
    return quote


# --- the funds ledger -----------------------------------------------------------------

def _entry(w: World, at: dt.datetime, account: str, direction: str, amount: Decimal, currency: str,
           entry_type: str, *, user=None, payment=None, description: str | None = None) -> None:
    assert amount > 0
    doc = {"_id": w.oid(at), "account": account, "currency": currency, "direction": direction,
           "amount": Decimal128(amount), "entryType": entry_type, "createdAt": at}
    if payment is not None:
        doc["payment"] = payment
    if user is not None:
        doc["user"] = user
    if description is not None and w.chance(0.88):  # older entries have no description
        doc["description"] = description
    w.add("fundsledgerentries", doc)


def _deposit(w: World, at: dt.datetime, user, amount: Decimal, currency: str) -> None:
    ref = f"deposit dep-{len(w.docs['fundsledgerentries']):06d}"
    # Both legs carry the description, so they pair even where older entries lack one.
    for account, direction, who in (("external", "debit", None), ("buyer_wallet", "credit", user)):
        doc = {"_id": w.oid(at), "account": account, "currency": currency, "direction": direction,
               "amount": Decimal128(amount), "entryType": "deposit", "description": ref, "createdAt": at}
        if who is not None:
            doc["user"] = who
        w.add("fundsledgerentries", doc)


def ledger(w: World) -> None:
    for p in w.docs["payments"]:
        if p["status"] not in ("held", "released", "refunded"):
            continue
        a = dec(p["amount"])
        cur, pid, payer = p["currency"], p["_id"], p["payer"]
        q = quantum(a)
        top_up = (a * Decimal(str(round(w.rng.uniform(0, 0.5), 2)))).quantize(q)
        _deposit(w, p["paidAt"] - dt.timedelta(minutes=w.rng.randint(5, 600)), payer, a + top_up, cur)
        _entry(w, p["paidAt"], "buyer_wallet", "debit", a, cur, "escrow_hold", user=payer, payment=pid,
               description=f"escrow hold {pid}")
        _entry(w, p["paidAt"], "escrow", "credit", a, cur, "escrow_hold", payment=pid,
               description=f"escrow hold {pid}")
        if p["status"] == "released":
            fee = max((a * w.choice(FEE_RATES)).quantize(q), q)
            t = p["releasedAt"]
            _entry(w, t, "escrow", "debit", a, cur, "escrow_release", payment=pid, description=f"release {pid}")
            _entry(w, t, "seller_wallet", "credit", a - fee, cur, "escrow_release", user=p["payee"], payment=pid,
                   description=f"release {pid}")
            _entry(w, t, "platform_fees", "credit", fee, cur, "fee", payment=pid, description=f"platform fee {pid}")
        elif p["status"] == "refunded":
            t = p["releasedAt"]
            _entry(w, t, "escrow", "debit", a, cur, "refund", payment=pid, description=f"refund {pid}")
            _entry(w, t, "buyer_wallet", "credit", a, cur, "refund", user=payer, payment=pid,
                   description=f"refund {pid}")
    for _ in range(w.n(420, 10)):  # wallet top-ups not tied to a payment
        user = w.choice(w.docs["users"])
        cur = w.choice(["USDT", "USDT", "USDC", "ETH", "BTC", "TRY"])
        amount = w.money(0.001, 2, places=8) if cur in ("ETH", "BTC") else w.money(5, 1500, places=2)
        _deposit(w, w.when(user["createdAt"]), user["_id"], amount.to_decimal(), cur)


# --- derived destinations and sweeps ----------------------------------------------------

def _address(w: World, chain: str) -> str:
    if chain == "bitcoin":
        return "bc1q" + hexstr(w, 19)
    if chain == "tron":
        alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
        return "T" + "".join(w.choice(alphabet) for _ in range(33))
    return "0x" + hexstr(w, 20)


def derived_destinations(w: World) -> None:
    index = {c: 0 for c in CHAINS}
    crypto = [p for p in w.docs["payments"] if p["provider"] in ("request_network", "amn_scanner")]
    unattached = [None] * w.n(30, 2)
    for p in crypto + unattached:
        chain = w.choice(list(CHAINS))
        created = p["createdAt"] if p else w.when()
        i = index[chain]
        index[chain] += 1
        doc = {"_id": w.oid(created), "chain": chain, "address": _address(w, chain), "createdAt": created,
               "derivationIndex": float(i) if w.chance(0.1) else i}  # the first allocator wrote doubles
        if w.chance(0.9):
            doc["derivationPath"] = f"m/44'/{CHAINS[chain]}'/0'/0/{i}"
        if p is not None:
            doc["payment"] = p["_id"]
            doc["user"] = p["payer"]
            status = "swept" if p["status"] in ("released", "refunded", "held") else "active"
        else:
            status = w.choice(["active", "active", "retired"])
        if w.chance(0.85):  # the first destinations predate the status field (active)
            doc["status"] = status
            doc["updatedAt"] = later(created, w, 72)
        elif status != "active":
            doc["status"] = status
        w.add("deriveddestinations", doc)


def derived_destination_sweeps(w: World) -> None:
    payments = {p["_id"]: p for p in w.docs["payments"]}
    for d in w.docs["deriveddestinations"]:
        if d.get("status") != "swept":
            continue
        p = payments.get(d.get("payment"))
        cur = p["currency"] if p else "USDT"
        total = dec(p["amount"]) if p else Decimal("100")
        for k in range(w.rng.randint(1, 2)):
            created = later(d["createdAt"], w, 24 * 5)
            places = 8 if cur in ("ETH", "BTC") else 6  # token units: 6 decimals for USDT/USDC
            amount = (total / (k + 1)).quantize(Decimal(1).scaleb(-places))
            doc = {"_id": w.oid(created), "destination": d["_id"], "amount": Decimal128(amount), "currency": cur,
                   "createdAt": created}
            status = w.choice(["confirmed", "confirmed", "confirmed", "pending", "failed"])
            if w.chance(0.9):
                doc["status"] = status
            if status != "pending" or "status" not in doc:
                doc["txHash"] = "0x" + hexstr(w, 32)
            if doc.get("status") == "confirmed":
                doc["sweptAt"] = later(created, w, 2)
            w.add("deriveddestinationsweeps", doc)


def release_holds(w: World) -> None:
    for p in w.docs["payments"]:
        if "purchaseRequest" not in p or p["status"] not in ("held", "released", "refunded"):
            continue
        if not w.chance(0.45):
            continue
        created = p["paidAt"]
        a = dec(p["amount"])
        amount = a if w.chance(0.6) else max((a / 2).quantize(quantum(a)), quantum(a))
        status = {"held": "held", "released": "released", "refunded": "cancelled"}[p["status"]]
        doc = {"_id": w.oid(created), "payment": p["_id"], "purchaseRequest": p["purchaseRequest"],
               "amount": float(amount) if w.chance(0.1) else Decimal128(amount), "currency": p["currency"],
               "createdAt": created}
        reason = w.choice(HOLD_REASONS)
        if reason:
            doc["reason"] = reason
        if status != "held" or w.chance(0.8):  # the first holds had no status field (held)
            doc["status"] = status
        if w.chance(0.7):
            doc["releaseAfter"] = created + dt.timedelta(days=w.choice([3, 7, 14]))
        if status == "released":
            doc["releasedAt"] = p["releasedAt"]
        if status != "held" or w.chance(0.5):
            doc["updatedAt"] = p.get("releasedAt") or later(created, w, 24)
        w.add("releaseholds", doc)


ORDER = 30
STEPS = [payments, ledger, derived_destinations, derived_destination_sweeps, release_holds]
