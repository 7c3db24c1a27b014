"""Refresh tokens, Telegram links and Telegram bot sessions (the rest of the auth domain)."""

from __future__ import annotations

import datetime as dt
import hashlib

from bson.int64 import Int64

from migration_assets.generator.world import World

AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4) Safari/604.1",
    "okhttp/4.12.0", "MarketplaceApp/2.8.56 (Android 14; Türkçe)", "curl/8.5.0",
]
STATES = ["idle", "awaiting_email", "awaiting_code", "linked", "browsing_requests", "composing_offer"]


def refresh_tokens(w: World) -> None:
    users = w.docs["users"]
    for i in range(w.n(150, 5)):
        user = w.choice(users)
        created = w.when(user["createdAt"])
        doc = {"_id": w.oid(created), "user": user["_id"],
               "tokenHash": hashlib.sha256(f"rt:{w.seed}:{i}:{w.rng.random()}".encode()).hexdigest(),
               "expiresAt": created + dt.timedelta(days=30), "createdAt": created}
        if w.chance(0.8):  # tokens issued before the session list have no user agent
            doc["userAgent"] = w.choice(AGENTS)
        if w.chance(0.3):
            doc["revokedAt"] = w.when(created, 30)
        w.add("refreshtokens", doc)


def telegram_id(w: World, i: int):
    value = 5_000_000_000 + i * 7919 + w.rng.randint(0, 7000)  # beyond 32 bits
    if i % 6 == 1:
        return float(value)  # the first bot version stored a double
    return Int64(value)


def telegram_links(w: World) -> None:
    linked = w.rng.sample(w.docs["users"], min(len(w.docs["users"]), w.n(25, 3)))
    for i, user in enumerate(linked):
        at = w.when(user["createdAt"])
        doc = {"_id": w.oid(at), "user": user["_id"], "telegramUserId": telegram_id(w, i), "linkedAt": at}
        if w.chance(0.75):
            doc["telegramUsername"] = w.choice(["ayse_k", "mehmet42", "zoe_market", "lukasz", "jose_p", "kai"]) + str(i)
        w.add("telegramlinks", doc)


def telegram_sessions(w: World) -> None:
    links = w.docs["telegramlinks"]
    for i in range(w.n(80, 4)):
        created = w.when()
        doc = {"_id": w.oid(created), "state": w.choice(STATES), "createdAt": created}
        if links and w.chance(0.6):
            link = w.choice(links)
            doc["telegramUserId"] = link["telegramUserId"]
            doc["user"] = link["user"]
        else:
            doc["telegramUserId"] = Int64(6_000_000_000 + i)  # not linked to an account yet
        if w.chance(0.8):
            data = {"lang": w.choice(["tr", "en", "de", "ar"]), "step": w.rng.randint(0, 6)}
            if w.chance(0.5):
                data["draft"] = {"title": w.choice(["Kulaklık arıyorum 🎧", "Need a GPU", "二手相机"]),
                                 "budget": w.money(10, 900), "tags": ["urgent", "gift"][: w.rng.randint(0, 2)],
                                 "requestId": w.choice(w.ids["purchaserequests"]) if w.ids["purchaserequests"] else None}
            if w.chance(0.3):
                data["lastSeenAt"] = w.when(created, 3)
                data["retries"] = float(w.rng.randint(0, 3))
            doc["data"] = data
        if w.chance(0.6):
            doc["expiresAt"] = created + dt.timedelta(hours=w.rng.randint(1, 72))
        w.add("telegramsessions", doc)


ORDER = 20
STEPS = [refresh_tokens, telegram_links, telegram_sessions]
