"""Configuration settings and their history, shop settings, addresses and reviews."""

from __future__ import annotations

import datetime as dt

from bson import Decimal128, ObjectId
from bson.int64 import Int64

from migration_assets.generator.world import World

RAILS = ["request_network", "trezor", "amn", "bank_transfer", "papara"]
CITIES = [("İstanbul", "TR"), ("İzmir", "TR"), ("Köln", "DE"), ("São Paulo", "BR"), ("東京", "JP"),
          ("Lagos", "NG"), ("Austin", "US"), ("Zürich", "CH"), ("القاهرة", "EG")]
COMMENTS = ["Harika satıcı, çok hızlı kargo!", "Great seller 👍", "Produkt wie beschrieben.", "还不错",
            "Slow shipping but good item", "⭐⭐⭐⭐⭐", "Paketleme özenliydi — teşekkürler"]


def _setting_values(w: World) -> list[tuple[str, object, str]]:
    """(key, value history oldest first, description): values of every JSON type."""
    return [
        ("confirmations.ETH", [12, 20, 12], "Confirmations before an ETH payment is held"),
        ("confirmations.BTC", [Decimal128("3"), 2, Decimal128("6")], "BTC confirmations (Decimal128 from the admin UI)"),
        ("confirmations.TRON", [19.0, 20.0], "Stored as doubles by the first settings page"),
        ("fees.platform_rate", [0.03, Decimal128("0.025")], "Platform fee rate"),
        ("fees.min_fee", [{"USDT": Decimal128("0.50"), "BTC": 0.00001, "TRY": 10}], "Minimum fee per currency"),
        ("feature.chat_enabled", [False, True], "Chat feature flag"),
        ("feature.telegram_bot", [True], "Telegram bot flag"),
        ("support.email", ["support@example.com", "destek@örnek.com.tr"], "Support mailbox (Unicode domain)"),
        ("support.hours", ["09:00–18:00 TRT"], "Support hours"),
        ("maintenance.message", ["", "Bakım çalışması 🛠 — kısa süre sonra döneceğiz"], "Banner text"),
        ("maintenance.window", [{"start": dt.datetime(2025, 3, 1, 1, tzinfo=dt.timezone.utc),
                                 "end": dt.datetime(2025, 3, 1, 3, tzinfo=dt.timezone.utc), "enabled": False}],
         "Planned maintenance (dates inside a JSON value)"),
        ("payment.rails", [["request_network"], ["request_network", "trezor", "amn"]], "Enabled payment rails"),
        ("limits.daily", [{"USDT": Decimal128("10000.00"), "BTC": 0.5,
                           "tiers": [{"level": 1, "max": 1000}, {"level": 5, "max": Int64(2**40)}]}],
         "Daily limits (nested objects in arrays)"),
        ("limits.per_request", ["5000"], "A number stored as a string: stays a JSON string"),
        ("ui.featured_categories", [[], ["electronics", "books", None, 3, True]], "Mixed-type array (with a null)"),
        ("ui.theme", [{"primary": "#0A84FF", "dark": {"enabled": True, "contrast": 1.5}, "ğüşıöç": "unicode key"}],
         "Theme (Unicode object keys)"),
        ("oracle.max_age_seconds", [Int64(900), 600], "Quote max age (Int64, then int)"),
        ("oracle.tiny_spread", [1.5e-07], "A double needing an exponent in Python's repr"),
        ("referral.bonus_points", [100, 150], "Referral bonus"),
        ("kyc.required_above", [{"amount": Decimal128("1000"), "currency": "USDT"}], "KYC threshold"),
        ("empty.object", [{}], "An empty object"),
        ("admin.owner", [ObjectId("64b7f0c2a1b2c3d4e5f60718")], "An ObjectId value (becomes its hex string)"),
        ("negative.adjustment", [Decimal128("-0.50"), -2], "Negative numbers"),
    ]


def config_settings(w: World) -> None:
    staff = [u["_id"] for u in w.docs["users"] if u.get("role") in ("admin", "moderator")] or w.ids["users"][:1]
    settings = _setting_values(w)
    extra = w.n(8, 0)
    for i in range(extra):
        settings.append((f"experiment.flag_{i}", [w.chance(0.5), w.rng.randint(0, 100)], "A/B experiment"))
    for key, history, description in settings:
        created = w.when(within_days=200)
        setting_id = w.oid(created)
        changed = created
        entries = []
        for k, value in enumerate(history):
            changed = w.when(changed, 60)
            entry = {"_id": w.oid(changed), "setting": setting_id, "key": key, "newValue": value, "changedAt": changed}
            if k > 0:
                entry["oldValue"] = history[k - 1]
            if w.chance(0.8):  # changes by seed scripts have no author
                entry["changedBy"] = w.choice(staff)
            entries.append(entry)
        # Extra no-op saves, so the history outweighs the settings.
        for _ in range(w.rng.randint(0, 5)):
            changed = w.when(changed, 30)
            entries.append({"_id": w.oid(changed), "setting": setting_id, "key": key, "oldValue": history[-1],
                            "newValue": history[-1], "changedBy": w.choice(staff), "changedAt": changed})
        doc = {"_id": setting_id, "key": key, "value": history[-1], "createdAt": created}
        if w.chance(0.8):
            doc["description"] = description
        if len(entries) > 1:
            doc["updatedAt"] = changed
            if "changedBy" in entries[-1]:
                doc["updatedBy"] = entries[-1]["changedBy"]
        w.add("configsettings", doc)
        for e in entries:
            w.add("configsettinghistories", e)


def shop_settings(w: World) -> None:
    for u in w.docs["users"]:
        if u.get("role") != "seller":
            continue
        created = w.when(u["createdAt"], 100)
        doc = {"_id": w.oid(created), "seller": u["_id"], "createdAt": created,
               "shopName": w.choice(["Tekno Dünyası", "Zoë's Finds", "Łódź Vintage", "李的小店", "Gadget Hub"]) + f" #{len(w.docs['shopsettings'])}"}
        if w.chance(0.6):
            doc["description"] = w.choice(["Orijinal ürünler, hızlı kargo", "Handpicked gear", "🚚 Same-day shipping"])
        if w.chance(0.8):  # shops created before review gating / rails lack these fields
            doc["reviewsEnabled"] = w.chance(0.85)
            doc["paymentRails"] = w.rng.sample(RAILS, w.rng.randint(0, 3))
            doc["isActive"] = w.chance(0.9)
            doc["updatedAt"] = w.when(created, 100)
        w.add("shopsettings", doc)


def addresses(w: World) -> None:
    users = w.rng.sample(w.docs["users"], min(len(w.docs["users"]), w.n(45, 5)))
    doubled = 0
    for u in users:
        n = w.rng.randint(1, 3)
        # Mongo never enforced one primary per user: some users hold two (at least one does).
        double_primary = n > 1 and (doubled == 0 or w.chance(0.2))
        doubled += double_primary
        for k in range(n):
            created = w.when(u["createdAt"])
            city, country = w.choice(CITIES)
            doc = {"_id": w.oid(created), "user": u["_id"], "line1": f"{w.rng.randint(1, 200)} {w.choice(['Bağdat Cd.', 'Main St', 'Rua Augusta', 'Königsallee'])}",
                   "city": city, "country": country, "createdAt": created}
            if k == 0 or double_primary:
                doc["isPrimary"] = True
            elif w.chance(0.7):
                doc["isPrimary"] = False
            if w.chance(0.8):  # addresses saved before types existed are shipping addresses
                doc["type"] = w.choice(["shipping", "shipping", "billing", "pickup"])
            if w.chance(0.6):
                doc["label"] = w.choice(["Ev", "İş", "Home", "Office", "Mom's"])
            if w.chance(0.7):
                doc["recipientName"] = u.get("displayName") or u["username"]
            if w.chance(0.4):
                doc.update(line2=f"Daire {w.rng.randint(1, 30)}", region="Region", postalCode=f"{w.rng.randint(10000, 99999)}")
            if w.chance(0.5):
                doc["phone"] = f"+90 5{w.rng.randint(10, 59)} {w.rng.randint(100, 999)} {w.rng.randint(1000, 9999)}"
            if w.chance(0.5):
                doc["updatedAt"] = w.when(created, 200)
            w.add("addresses", doc)


def reviews(w: World) -> None:
    offers = {o["_id"]: o for o in w.docs["selleroffers"]}
    sellers = [u["_id"] for u in w.docs["users"] if u.get("role") == "seller"] or w.ids["users"][:3]
    for pr in w.docs["purchaserequests"]:
        offer = offers.get(pr.get("selectedOfferId"))
        if offer is None or pr["status"] not in ("completed", "delivered") or not w.chance(0.8):
            continue
        _review(w, pr["buyer"], offer["seller"], pr["_id"], w.when(offer["createdAt"], 40))
    for _ in range(w.n(40, 3)):  # reviews from before purchase-linked reviews
        _review(w, w.choice(w.ids["users"]), w.choice(sellers), None, w.when())


def _review(w: World, reviewer, seller, pr, created) -> None:
    rating = w.choice([5, 5, 5, 4, 4, 3, 2, 1])
    doc = {"_id": w.oid(created), "reviewer": reviewer, "seller": seller, "createdAt": created,
           "rating": float(rating) if w.chance(0.15) else rating}  # the first widget stored doubles
    if pr is not None:
        doc["purchaseRequest"] = pr
    if w.chance(0.75):
        doc["comment"] = w.choice(COMMENTS)
    if w.chance(0.2):
        doc["updatedAt"] = w.when(created, 30)
    w.add("reviews", doc)


ORDER = 45
STEPS = [config_settings, shop_settings, addresses, reviews]
