"""Point transactions, Trezor accounts and their derived addresses, level configuration."""

from __future__ import annotations

from migration_assets.generator.world import World

LEVELS = [
    (1, "Bronz", 0, []), (2, "Gümüş", 100, ["badge"]), (3, "Altın", 300, ["badge", "priority_support"]),
    (4, "Platin", 800, ["badge", "priority_support", "lower_fees"]), (5, "Elmas", 1500, ["lower_fees", "early_access"]),
    (6, "Zümrüt 💎", 3000, ["lower_fees", "early_access", "free_shipping"]), (7, "Legend", 6000, ["all"]),
    (8, "Mythic", 10000, ["all", "concierge"]), (9, "Titan", 20000, ["all", "concierge"]),
    (10, "殿堂 Hall of Fame", 50000, ["all", "concierge", "swag"]),
]
REASONS = {
    "earn": ["Purchase completed", "Satın alma tamamlandı", "Review written"],
    "spend": ["Fee discount", "Öne çıkarma", "Gift card"],
    "referral": ["Referral signup", "Davet bonusu"],
    "bonus": ["Welcome bonus 🎉", "Campaign: Ramazan", "Birthday"],
    "adjustment": ["Manual correction", "Fraud reversal"],
}
BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def level_configs(w: World) -> None:
    for level, name, min_points, perks in LEVELS:
        created = w.when(within_days=30)
        doc = {"_id": w.oid(created), "level": level, "name": name, "createdAt": created,
               "minPoints": float(min_points) if w.chance(0.2) else min_points}
        if perks or w.chance(0.5):  # levels seeded before perks existed have none
            doc["perks"] = list(perks)
        if w.chance(0.5):
            doc["updatedAt"] = w.when(created, 200)
        w.add("levelconfigs", doc)


def point_transactions(w: World) -> None:
    users = w.docs["users"]
    for _ in range(w.n(900, 20)):
        user = w.choice(users)
        created = w.when(user["createdAt"])
        kind = w.choice(["earn"] * 5 + ["spend"] * 2 + ["referral", "bonus", "adjustment"])
        amount = {"earn": w.rng.randint(5, 500), "spend": -w.rng.randint(10, 300), "referral": 100,
                  "bonus": w.rng.randint(50, 1000), "adjustment": w.rng.randint(-200, 200) or 1}[kind]
        doc = {"_id": w.oid(created), "user": user["_id"], "type": kind, "createdAt": created,
               "amount": float(amount) if w.chance(0.1) else amount}  # the first PointsService wrote doubles
        if w.chance(0.85):
            doc["reason"] = w.choice(REASONS[kind])
        if kind in ("earn", "spend") and w.ids["purchaserequests"] and w.chance(0.7):
            doc["referenceId"] = str(w.choice(w.ids["purchaserequests"]))
        elif kind == "referral":
            doc["referenceId"] = f"REF{w.rng.randint(0, 999999):06d}"
        w.add("pointtransactions", doc)


def trezor_accounts(w: World) -> None:
    sellers = [u for u in w.docs["users"] if u.get("role") == "seller"] or w.docs["users"][:3]
    for i in range(w.n(20, 2)):
        user = w.choice(sellers)
        created = w.when(user["createdAt"])
        coin = w.choice(["btc", "btc", "eth", "ltc"])
        doc = {"_id": w.oid(created), "user": user["_id"], "coin": coin, "createdAt": created,
               "xpub": ("zpub" if coin == "btc" else "xpub") + "".join(w.choice(BASE58) for _ in range(107))}
        if w.chance(0.7):
            doc["label"] = w.choice(["Ana cüzdan", "Cold storage", "Shop wallet", "Trezor Model T"])
        if w.chance(0.8):  # accounts registered before multi-account support have no index
            doc["accountIndex"] = w.rng.randint(0, 3)
        if w.chance(0.4):
            doc["updatedAt"] = w.when(created, 100)
        w.add("trezoraccounts", doc)


def trezor_derived_addresses(w: World) -> None:
    for acct in w.docs["trezoraccounts"]:
        purpose = 84 if acct["coin"] == "btc" else 44
        coin_type = {"btc": 0, "eth": 60, "ltc": 2}[acct["coin"]]
        for i in range(w.rng.randint(4, 16)):
            created = w.when(acct["createdAt"], 200)
            if acct["coin"] == "eth":
                address = "0x" + w.rng.getrandbits(160).to_bytes(20, "big").hex()
            else:
                address = ("bc1q" if acct["coin"] == "btc" else "ltc1q") + w.rng.getrandbits(152).to_bytes(19, "big").hex()
            doc = {"_id": w.oid(created), "trezorAccount": acct["_id"], "address": address,
                   "derivationPath": f"m/{purpose}'/{coin_type}'/{acct.get('accountIndex', 0)}'/0/{i}",
                   "addressIndex": float(i) if w.chance(0.1) else i, "createdAt": created}
            if w.chance(0.8):  # absent until the address first receives funds
                doc["used"] = w.chance(0.4)
            w.add("trezorderivedaddresses", doc)


ORDER = 40
STEPS = [level_configs, point_transactions, trezor_accounts, trezor_derived_addresses]
