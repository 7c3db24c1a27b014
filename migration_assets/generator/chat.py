"""Chats with their participants and messages embedded, as the backend stores them in Mongo."""

from __future__ import annotations

import datetime as dt

from migration_assets.generator.world import World

BODIES = [
    "Merhaba! Ürün hâlâ mevcut mu?", "Hi, is this still available?", "Kargo ne zaman çıkar? 📦",
    "I can ship tomorrow 🚚", "Bitte senden Sie mir die Rechnung.", "好的，谢谢！", "مرحبا، هل السعر نهائي؟",
    "Deal 🤝", "Can you do 10% off?", "Fotoğrafları gönderdim", "Payment sent, tx hash in the order",
    "Çok teşekkürler, ürün elime ulaştı 🙏", "Zoë here — the size runs small", "👍",
]


def _messages(w: World, participants: list[dict], start: dt.datetime, n: int) -> list[dict]:
    out = []
    t = start
    for _ in range(n):
        t = t + dt.timedelta(milliseconds=w.rng.randint(5_000, 36 * 3_600_000))
        sender = w.choice(participants)["user"]
        m = {"_id": w.oid(t), "sender": sender, "body": w.choice(BODIES), "sentAt": t}
        if w.chance(0.8):  # messages sent before attachments existed lack the field
            m["attachments"] = [f"https://cdn.example.com/chat/{w.rng.getrandbits(48):012x}.jpg"
                                for _ in range(w.rng.randint(0, 2) if w.chance(0.2) else 0)]
        if w.chance(0.05):
            m["editedAt"] = t + dt.timedelta(seconds=w.rng.randint(5, 600))
        out.append(m)
    return out


def _chat(w: World, created: dt.datetime, kind: str, members: list[tuple], pr=None) -> None:
    old = w.chance(0.15)  # chats created before join tracking: participants lack joinedAt
    participants = []
    for user, role in members:
        p = {"user": user, "role": role}
        if not old:
            p["joinedAt"] = created if role in ("buyer", "seller") else created + dt.timedelta(hours=w.rng.randint(1, 48))
        participants.append(p)
    n = w.rng.randint(0, 3) if w.chance(0.1) else w.rng.randint(3, 30)
    messages = _messages(w, participants, created, n)
    for p in participants:
        if messages and w.chance(0.7):
            p["lastReadAt"] = w.choice(messages)["sentAt"]
    doc = {"_id": w.oid(created), "type": kind, "participants": participants, "messages": messages, "createdAt": created}
    if pr is not None:
        doc["purchaseRequest"] = pr
    if messages:
        doc["lastMessageAt"] = messages[-1]["sentAt"]
        doc["updatedAt"] = messages[-1]["sentAt"]
    w.add("chats", doc)


def chats(w: World) -> None:
    offers = {o["_id"]: o for o in w.docs["selleroffers"]}
    staff = [u["_id"] for u in w.docs["users"] if u.get("role") in ("admin", "moderator")] or w.ids["users"][:1]
    for pr in w.docs["purchaserequests"]:
        offer = offers.get(pr.get("selectedOfferId"))
        if offer is None or offer["seller"] == pr["buyer"] or not w.chance(0.85):
            continue
        members = [(pr["buyer"], "buyer"), (offer["seller"], "seller")]
        if pr["status"] == "disputed":
            admin = w.choice(staff)
            if admin not in (pr["buyer"], offer["seller"]):
                members.append((admin, "admin"))
        _chat(w, w.when(offer["createdAt"], 5), "request", members, pr["_id"])
    users = w.ids["users"]
    for _ in range(w.n(30, 2)):
        user, agent = w.choice(users), w.choice(staff)
        if user != agent:
            _chat(w, w.when(), "support", [(user, "buyer"), (agent, "support")])
    for _ in range(w.n(20, 2)):
        a, b = w.rng.sample(users, 2)
        _chat(w, w.when(), "direct", [(a, "buyer"), (b, "seller")])


ORDER = 50
STEPS = [chats]
