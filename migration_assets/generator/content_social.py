"""Blog posts, notifications (the largest collection) and disputes."""

from __future__ import annotations

from migration_assets.generator.world import World

TITLES = ["Güvenli alışverişin 5 kuralı", "How escrow protects you", "Neue Zahlungsmethoden", "Kripto ile ödeme rehberi 🪙",
          "Seller spotlight: Zoë's Finds", "Release notes 2.8", "二手交易小贴士", "Dispute process explained"]
TAGS = ["guide", "escrow", "crypto", "sellers", "release", "güvenlik", "news"]
NOTIFICATION_TYPES = {
    "offer_received": ("Yeni teklif aldınız", "New offer on your request"),
    "offer_accepted": ("Teklifiniz kabul edildi 🎉", "Your offer was accepted"),
    "payment_held": ("Ödeme emanette", "Payment held in escrow"),
    "payment_released": ("Ödeme serbest bırakıldı", "Payment released"),
    "message": ("Yeni mesaj 💬", "New message"),
    "review_received": ("Yeni değerlendirme ⭐", "New review"),
    "dispute_opened": ("Anlaşmazlık açıldı", "Dispute opened"),
    "system": ("Sistem bildirimi", "Scheduled maintenance"),
}


def blog_posts(w: World) -> None:
    authors = [u["_id"] for u in w.docs["users"] if u.get("role") in ("admin", "moderator")] or w.ids["users"][:1]
    for i in range(w.n(30, 3)):
        created = w.when()
        title = w.choice(TITLES)
        doc = {"_id": w.oid(created), "author": w.choice(authors), "title": title, "slug": f"post-{i:04d}",
               "body": f"# {title}\n\n" + "Lorem ipsum — çok güzel bir yazı. 🚀\n" * w.rng.randint(3, 40),
               "createdAt": created}
        if w.chance(0.8):  # posts from the first CMS have neither tags nor status
            status = w.choice(["published", "published", "draft", "archived"])
            doc["status"] = status
            doc["tags"] = w.rng.sample(TAGS, w.rng.randint(0, 3))
            if status != "draft":
                doc["publishedAt"] = w.when(created, 10)
        if w.chance(0.6):
            doc["excerpt"] = title + " …"
        if w.chance(0.5):
            doc["updatedAt"] = w.when(created, 60)
        w.add("blogposts", doc)


def notifications(w: World) -> None:
    users = w.docs["users"]
    payments = w.docs["payments"]
    chats = w.docs["chats"]
    for _ in range(w.n(2500, 30)):
        user = w.choice(users)
        created = w.when(user["createdAt"])
        kind = w.choice(list(NOTIFICATION_TYPES))
        title_tr, title_en = NOTIFICATION_TYPES[kind]
        doc = {"_id": w.oid(created), "user": user["_id"], "type": kind,
               "title": title_tr if w.chance(0.6) else title_en, "createdAt": created}
        if w.chance(0.85):  # older notifications carry neither body nor data
            doc["body"] = w.choice(["Detaylar için tıklayın.", "Tap to view.", "Bitte prüfen.", "请查看。"])
            data = {"v": 2}
            if kind.startswith("payment") and payments:
                p = w.choice(payments)
                data.update(paymentId=p["_id"], amount=p["amount"], currency=p["currency"])
            elif kind == "message" and chats:
                c = w.choice(chats)
                data.update(chatId=c["_id"], preview=(c["messages"][-1]["body"] if c["messages"] else None))
            elif kind.startswith("offer") and w.ids["selleroffers"]:
                data.update(offerId=w.choice(w.ids["selleroffers"]), requestId=w.choice(w.ids["purchaserequests"]))
            if w.chance(0.2):
                data["meta"] = {"channel": w.choice(["push", "email", "telegram"]), "attempts": w.rng.randint(1, 3),
                                "ratio": w.rng.random(), "sentAt": created, "tags": ["a", "b"][: w.rng.randint(0, 2)]}
            doc["data"] = data
        if w.chance(0.6):
            doc["readAt"] = w.when(created, 20)
        w.add("notifications", doc)


def disputes(w: World) -> None:
    offers = {o["_id"]: o for o in w.docs["selleroffers"]}
    paid = {}
    for p in w.docs["payments"]:
        if "purchaseRequest" in p and p["status"] in ("held", "refunded", "released"):
            paid[p["purchaseRequest"]] = p
    for pr in w.docs["purchaserequests"]:
        if pr["status"] != "disputed" and not (pr["status"] == "delivered" and w.chance(0.05)):
            continue
        offer = offers.get(pr.get("selectedOfferId"))
        created = w.when(pr["createdAt"], 40)
        doc = {"_id": w.oid(created), "purchaseRequest": pr["_id"], "openedBy": pr["buyer"], "createdAt": created,
               "reason": w.choice(["Ürün açıklamaya uymuyor", "Item never arrived", "Beschädigt angekommen", "Wrong size"])}
        payment = paid.get(pr["_id"])
        if payment is not None:
            doc["payment"] = payment["_id"]
        if offer is not None and w.chance(0.9):
            doc["againstUser"] = offer["seller"]
        status = ("resolved_buyer" if payment and payment["status"] == "refunded"
                  else w.choice(["open", "under_review", "resolved_seller", "closed"]))
        if status != "open" or w.chance(0.7):  # the first disputes had no status (open)
            doc["status"] = status
        if status.startswith("resolved") or status == "closed":
            doc["resolution"] = w.choice(["Refunded to buyer", "Satıcı lehine sonuçlandı", "Closed by agreement"])
            doc["resolvedAt"] = w.when(created, 20)
            doc["updatedAt"] = doc["resolvedAt"]
        w.add("disputes", doc)


ORDER = 60
STEPS = [blog_posts, notifications, disputes]
