"""Users, categories, request templates, purchase requests and seller offers: the
marketplace core, with the awkward cases the seed names."""

from __future__ import annotations

import datetime as dt
import hashlib

from migration_assets.generator.world import World

ROLES = ["user"] * 12 + ["seller"] * 6 + ["admin", "moderator", "guard"]
CURRENCIES = ["USDT"] * 6 + ["USDC"] * 2 + ["ETH", "BTC", "TRY"]
CATEGORY_NAMES = [
    "Electronics", "Phones", "Laptops", "Home", "Garden", "Books", "Toys", "Sports", "Fashion",
    "Shoes", "Music", "Art", "Tools", "Auto Parts", "Services", "Cleaning", "Repairs", "Tutoring",
]
# Duplicates of active names that differ only by case or surrounding spaces (0009's case).
DUPLICATE_NAMES = [" electronics", "ELECTRONICS ", "Books ", "books", " Tools "]
SPEC_KEYS = ["color", "size", "brand", "model", "condition", "warranty", "material", "storage"]
STATUSES_WITH_OFFER = ["offer_accepted", "paid", "shipped", "delivered", "completed", "disputed"]


def users(w: World) -> None:
    for i in range(w.n(60, 10)):
        created = w.when()
        old = w.chance(0.15)  # older documents predate role/points/level/isVerified
        doc = {
            "_id": w.oid(created),
            "email": f"user{i}@example.{w.choice(['com', 'org', 'net'])}",
            "username": f"user_{i}",
            "passwordHash": hashlib.sha256(f"pw{i}".encode()).hexdigest(),
            "createdAt": created,
        }
        if w.chance(0.7):
            doc["displayName"] = w.choice(["Ayşe", "Mehmet", "Zoë", "Łukasz", "José", "李雷", "Ana", "Kai"]) + f" {i}"
        if not old:
            doc.update(
                role=w.choice(ROLES) if i > 2 else ["admin", "seller", "user"][i],
                points=w.rng.randint(0, 5000),
                level=w.rng.randint(1, 10),
                isVerified=w.chance(0.6),
                updatedAt=w.when(created, 200),
            )
            if w.chance(0.5):
                doc["walletAddress"] = "0x" + w.rng.getrandbits(160).to_bytes(20, "big").hex()
            if w.chance(0.4):
                doc["referralCode"] = f"REF{i:06d}"
            if w.chance(0.5):
                doc["lastLoginAt"] = w.when(created, 300)
            if w.chance(0.3):
                doc["passkeys"] = [
                    {
                        "_id": w.oid(created),
                        "credentialId": f"cred-{i}-{k}",
                        "publicKey": hashlib.sha1(f"pk{i}{k}".encode()).hexdigest(),
                        "signCount": w.rng.randint(0, 300),
                        "transports": w.rng.sample(["usb", "nfc", "ble", "internal", "hybrid"], w.rng.randint(1, 3)),
                        "createdAt": w.when(created, 30),
                    }
                    for k in range(w.rng.randint(1, 2))
                ]
        w.add("users", doc)


def sellers(w: World) -> list:
    return [d["_id"] for d in w.docs["users"] if d.get("role") == "seller"] or w.ids["users"][:3]


def categories(w: World) -> None:
    roots = []
    for name in CATEGORY_NAMES:
        created = w.when(within_days=60)
        parent = w.choice(roots) if roots and w.chance(0.5) else None
        doc = {"_id": w.oid(created), "name": name, "slug": name.lower().replace(" ", "-"),
               "isActive": True, "sortOrder": len(w.docs["categories"]), "createdAt": created}
        if parent is not None:
            doc["parent"] = parent
        if w.chance(0.5):
            doc["description"] = f"All things {name.lower()}"
        w.add("categories", doc)
        if parent is None:
            roots.append(doc["_id"])
    for name in DUPLICATE_NAMES:
        created = w.when(dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), 300)
        w.add("categories", {"_id": w.oid(created), "name": name, "slug": name.strip().lower() + "-dup",
                             "isActive": True, "createdAt": created})
    inactive = w.when()
    w.add("categories", {"_id": w.oid(inactive), "name": "Electronics", "slug": "electronics-old",
                         "isActive": False, "createdAt": inactive})


def active_categories(w: World) -> list:
    return [d["_id"] for d in w.docs["categories"] if d.get("isActive")]


def request_templates(w: World) -> None:
    cats = active_categories(w)
    for i in range(w.n(8, 3)):
        created = w.when()
        doc = {"_id": w.oid(created), "owner": w.choice(w.ids["users"]), "category": w.choice(cats),
               "title": f"Template {i}", "isPublic": w.chance(0.5), "createdAt": created}
        if w.chance(0.7):
            doc["budget"] = {"amount": w.money(10, 2000), "currency": w.choice(CURRENCIES)}
        if w.chance(0.5):
            doc["defaultQuantity"] = w.rng.randint(1, 5)
        if w.chance(0.5):
            doc["description"] = "Reusable request"
        w.add("requesttemplates", doc)


def purchase_requests(w: World) -> None:
    cats = active_categories(w)
    seller_ids = sellers(w)
    for i in range(w.n(150, 20)):
        created = w.when()
        pr_id = w.oid(created)
        status = w.choice(["open"] * 4 + STATUSES_WITH_OFFER + ["cancelled"])
        old = w.chance(0.1)
        doc = {"_id": pr_id, "buyer": w.choice(w.ids["users"]), "category": w.choice(cats),
               "title": f"Looking for item #{i}", "status": status, "createdAt": created}
        if not old:
            amount = w.money(5, 5000) if w.chance(0.9) else float(w.rng.randint(5, 500))  # old Number budgets
            doc["budget"] = {"amount": amount, "currency": w.choice(CURRENCIES)}
            doc["quantity"] = float(w.rng.randint(1, 4)) if w.chance(0.3) else w.rng.randint(1, 4)
            doc["description"] = w.choice(["Need it fast", "Gift — please wrap 🎁", "Details in chat", "Ünïcødé ok"])
            doc["updatedAt"] = w.when(created, 60)
        if w.docs["requesttemplates"] and w.chance(0.2):
            doc["template"] = w.choice(w.ids["requesttemplates"])
        if w.chance(0.3):
            doc["deadline"] = w.when(created, 90)
        if w.chance(0.6):
            info = {"method": w.choice(["shipping", "pickup", "digital", "service"])}
            if w.chance(0.5):
                info["instructions"] = "Leave at the door"
            if w.chance(0.4):
                info["shippingCost"] = w.money(0, 50)
            if info["method"] == "shipping" or w.chance(0.2):
                info["address"] = {"recipientName": f"Buyer {i}", "line1": f"{i} Main St", "city": w.choice(["Istanbul", "Berlin", "Lagos", "Austin"]),
                                   "country": w.choice(["TR", "DE", "NG", "US"])}
                if w.chance(0.5):
                    info["address"].update(line2="Apt 2", region="Region", postalCode=f"{w.rng.randint(10000, 99999)}", phone="+100000000")
            doc["deliveryInfo"] = info
        if w.chance(0.2):
            doc["serviceInfo"] = {"serviceType": w.choice(["repair", "cleaning", "tutoring"]), "location": "On site",
                                  "scheduledAt": w.when(created, 30), "durationMinutes": w.choice([30, 60, 90])}
        if w.chance(0.6):
            keys = w.rng.sample(SPEC_KEYS, w.rng.randint(1, 4))
            doc["specifications"] = [{"key": k, "value": f"{k}-{w.rng.randint(1, 9)}"} for k in keys]
        if w.chance(0.3):
            doc["preferredSellers"] = w.rng.sample(seller_ids, min(len(seller_ids), w.rng.randint(1, 3)))
        offers = []
        for _ in range(w.rng.randint(0, 5) if status == "open" else w.rng.randint(1, 5)):
            offered = w.when(created, 20)
            offer = {"_id": w.oid(offered), "purchaseRequest": pr_id, "seller": w.choice(seller_ids),
                     "price": {"amount": w.money(5, 5000), "currency": w.choice(CURRENCIES)},
                     "status": "pending", "createdAt": offered}
            if w.chance(0.7):
                offer["deliveryDays"] = w.rng.randint(1, 30)
            if w.chance(0.6):
                offer["message"] = "I can deliver this"
            if w.chance(0.5):
                offer["updatedAt"] = w.when(offered, 10)
            offers.append(offer)
        if status in STATUSES_WITH_OFFER and offers:
            chosen = w.choice(offers)
            chosen["status"] = "accepted"
            doc["selectedOfferId"] = chosen["_id"]  # an offer of this very request
            for o in offers:
                if o is not chosen:
                    o["status"] = w.choice(["rejected", "withdrawn", "pending"])
        if status in ("shipped", "delivered", "completed"):
            doc["sellerDeliveryInfo"] = {"carrier": w.choice(["UPS", "DHL", "Yurtiçi"]), "trackingNumber": f"TRK{i:08d}",
                                         "shippedAt": w.when(created, 10)}
            doc["deliveryAttempts"] = [
                {"_id": w.oid(created), "attemptNumber": k + 1,
                 "status": "delivered" if k == n - 1 and status != "shipped" else w.choice(["failed", "in_transit"]),
                 "carrier": doc["sellerDeliveryInfo"]["carrier"], "attemptedAt": w.when(created, 20)}
                for n in [w.rng.randint(1, 3)] for k in range(n)
            ]
        w.add("purchaserequests", doc)
        for o in offers:
            w.add("selleroffers", o)


ORDER = 10
STEPS = [users, categories, request_templates, purchase_requests]
