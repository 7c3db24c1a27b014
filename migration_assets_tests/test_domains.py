"""Integration, domain by domain, against the real local PostgreSQL and jongodb: each domain's
job ``migrate_<domain>`` (partition = the domain) runs after its upstream domains, every check
is green and every table holds exactly the generated rows. Chat is relational and round-trips;
the ledger follows its double-entry model; unmappable documents of the new tables are
quarantined and accounted for; the same source migrated twice gets the same ids."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import defaultdict
from contextlib import contextmanager
from decimal import Decimal

import bson
import psycopg
import pytest
from bson import Decimal128, ObjectId
from bson.codec_options import CodecOptions

from migration_assets.generator.writers import write_dump, write_mongo
from migration_assets.specs.ids import new_id
from migration_assets.specs.kinds import dumps_json, to_json_value
from migration_assets.specs.registry import DOMAINS, all_loaders, loaders_in_domain
from migration_assets_tests.conftest import as_admin, create_database, db_url, drop_databases
from migration_assets_tests.helpers import check_evaluations, failed_checks, meta_value, run_job

pytestmark = pytest.mark.integration

UTC = dt.timezone.utc
MONGO_READ = CodecOptions(tz_aware=True, tzinfo=UTC)


# --- plumbing --------------------------------------------------------------------------

@contextmanager
def pointed_at(stack_env, target: str, *, mode: str, database: str = "marketplace", dump=None):
    """The Definitions' EnvVars, for the duration of one job run only."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MONGODB_URI", stack_env["MONGODB_URI"])
        mp.setenv("MONGODB_DATABASE", database)
        mp.setenv("MIGRATION_SOURCE", mode)
        mp.setenv("MONGODUMP_DIR", str(dump or ""))
        mp.setenv("MIGRATION_PG_URL", target)
        mp.setenv("MIGRATION_PG_ALLOWED_HOSTS", "127.0.0.1,localhost")
        yield


def migrate_domains(definitions, stack_env, target: str, **source) -> dict:
    """Every domain's job in DOMAINS order (each after its upstream domains)."""
    results = {}
    for d in DOMAINS:
        with pointed_at(stack_env, target, **source):
            results[d] = run_job(definitions, f"migrate_{d}", partition_key=d)
    return results


@pytest.fixture(scope="module")
def module_db(pg_server, schema_template):
    """Factory of migrated target databases that live for the whole module."""
    created = []

    def make() -> str:
        created.append(create_database(pg_server, "ma_dom", schema_template))
        return db_url(pg_server, created[-1])

    yield make
    drop_databases(pg_server, *created)


@pytest.fixture(scope="module")
def source_db(mongo_client, world):
    """The session world in a fresh jongodb database (emptied afterwards: jongodb cannot drop)."""
    name = f"ma_dom_{uuid.uuid4().hex[:10]}"
    write_mongo(mongo_client[name], world.docs, clear=False)
    yield name
    for coll in world.docs:
        mongo_client[name][coll].delete_many({})


@pytest.fixture(scope="module")
def domain_target(module_db):
    return module_db()


@pytest.fixture(scope="module")
def domain_runs(definitions, stack_env, domain_target, source_db):
    return migrate_domains(definitions, stack_env, domain_target, mode="live", database=source_db)


@pytest.fixture
def conn(domain_target):
    """The target as the superuser, to look at it (the platform connects as its own role)."""
    with psycopg.connect(as_admin(domain_target), autocommit=True) as c:
        yield c


def rows_of(table_spec, docs) -> int:
    return sum(1 for d in docs for _ in table_spec.rows.sources(d))


def count(conn, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM public.{table}").fetchone()[0]


def as_dec(value) -> Decimal:
    return value.to_decimal() if isinstance(value, Decimal128) else Decimal(repr(value))


# --- every domain ----------------------------------------------------------------------

@pytest.mark.parametrize("domain", DOMAINS)
def test_domain_job_is_green_and_complete(domain, domain_runs, conn, world):
    result = domain_runs[domain]
    assert result.success, failed_checks(result)
    assert failed_checks(result) == []
    evaluations = check_evaluations(result)
    loaders = loaders_in_domain(domain)
    assert loaders
    for loader in loaders:
        docs = world.docs[loader.collection]
        assert docs, loader.collection
        for t in loader.tables:
            expected = rows_of(t, docs)
            assert count(conn, t.table) == expected, t.table
            rc = evaluations[(f"public/{t.table}", "row_count_parity")]
            cs = evaluations[(f"public/{t.table}", "checksum_parity")]
            assert rc.passed and cs.passed, t.table
            assert meta_value(rc, "expected_rows") == expected == meta_value(rc, "actual_rows")
            assert meta_value(rc, "quarantined_rows") == 0
        assert evaluations[(f"public/{loader.root.table}", "quarantine_empty")].passed
    # id_map is materialized for this domain's partition and covers its tables.
    id_map = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "public/id_map"]
    assert [e.partition for e in id_map] == [domain]
    for loader in loaders:
        for t in loader.tables:
            if t.has_legacy_id:
                n = conn.execute("SELECT count(*) FROM id_map WHERE entity = %s", [t.table]).fetchone()[0]
                assert n == count(conn, t.table), t.table


def test_auth_telegram_ids_exact(domain_runs, conn, world):
    loaded = dict(conn.execute("SELECT legacy_object_id, telegram_user_id FROM telegram_links").fetchall())
    doubles = 0
    for d in world.docs["telegramlinks"]:
        assert loaded[str(d["_id"])] == int(d["telegramUserId"])
        doubles += isinstance(d["telegramUserId"], float)
        assert int(d["telegramUserId"]) > 2**32
    assert doubles, "the generator should include ids stored as doubles"
    # data jsonb: the bot state round-trips as JSON.
    data = dict(conn.execute("SELECT legacy_object_id, data FROM telegram_sessions").fetchall())
    for d in world.docs["telegramsessions"]:
        want = json.loads(dumps_json(to_json_value(d["data"]))) if "data" in d else None
        assert data[str(d["_id"])] == want


def test_payments_ledger_follows_double_entry_model(domain_runs, conn, world):
    pay = {str(p["_id"]): p for p in world.docs["payments"]}
    entries = conn.execute(
        "SELECT p.legacy_object_id, e.account, e.direction::text, e.entry_type::text, e.amount, e.currency::text, "
        "u.legacy_object_id, e.description FROM funds_ledger_entries e LEFT JOIN payments p ON p.id = e.payment_id "
        "LEFT JOIN users u ON u.id = e.user_id").fetchall()
    by_payment = defaultdict(list)
    deposits = defaultdict(list)
    for row in entries:
        assert row[4] > 0
        if row[0] is None:
            assert row[3] == "deposit"
            deposits[(row[7], row[5])].append(row)
        else:
            by_payment[row[0]].append(row)
    for legs in deposits.values():  # deposits pair by description: external -> buyer_wallet
        assert sorted((l[1], l[2], l[6] is None) for l in legs) == [("buyer_wallet", "credit", False),
                                                                     ("external", "debit", True)]
        assert legs[0][4] == legs[1][4]
    for pid, p in pay.items():
        rows = by_payment.get(pid, [])
        if p["status"] not in ("held", "released", "refunded"):
            assert rows == [], pid
            continue
        a = as_dec(p["amount"])
        assert all(r[5] == p["currency"] for r in rows)
        debits = sum(r[4] for r in rows if r[2] == "debit")
        credits = sum(r[4] for r in rows if r[2] == "credit")
        assert debits == credits, pid
        hold = sum(r[4] for r in rows if r[3] == "escrow_hold" and r[1] == "escrow" and r[2] == "credit")
        assert hold == a, pid
        kinds = sorted((r[1], r[2], r[3]) for r in rows)
        expected = [("buyer_wallet", "debit", "escrow_hold"), ("escrow", "credit", "escrow_hold")]
        if p["status"] == "released":
            expected += [("escrow", "debit", "escrow_release"), ("platform_fees", "credit", "fee"),
                         ("seller_wallet", "credit", "escrow_release")]
            fee = next(r[4] for r in rows if r[3] == "fee")
            assert 0 < fee < a
        elif p["status"] == "refunded":
            expected += [("buyer_wallet", "credit", "refund"), ("escrow", "debit", "refund")]
        assert kinds == sorted(expected), pid
        for r in rows:
            who = {"buyer_wallet": str(p["payer"]), "seller_wallet": str(p.get("payee"))}.get(r[1])
            assert r[6] == who, (pid, r[1])
    # The ledger is append-only in PostgreSQL: the triggers refuse changes.
    with pytest.raises(psycopg.errors.RestrictViolation):
        conn.execute("UPDATE funds_ledger_entries SET description = 'x' WHERE legacy_object_id = (SELECT min(legacy_object_id) FROM funds_ledger_entries)")


def test_payment_quotes_have_deterministic_ids(domain_runs, conn, world):
    quotes = conn.execute("SELECT p.legacy_object_id, q.id, q.rate, q.base_amount FROM payment_quotes q "
                          "JOIN payments p ON p.id = q.payment_id").fetchall()
    with_quote = {str(p["_id"]): p["quote"] for p in world.docs["payments"] if "quote" in p}
    assert len(quotes) == len(with_quote) > 0
    for legacy, qid, rate, base in quotes:
        assert qid == new_id("payment_quotes", legacy)
        assert rate == as_dec(with_quote[legacy]["rate"]) and base == as_dec(with_quote[legacy]["baseAmount"])


def test_payments_rerun_appends_nothing(domain_runs, definitions, stack_env, domain_target, source_db, conn):
    before = conn.execute("SELECT id, legacy_object_id, amount FROM funds_ledger_entries ORDER BY id").fetchall()
    with pointed_at(stack_env, domain_target, mode="live", database=source_db):
        again = run_job(definitions, "migrate_payments", partition_key="payments")
    assert again.success, failed_checks(again)
    changed = {e.asset_key.to_user_string(): e.materialization.metadata["rows_inserted_or_changed"].value
               for e in again.get_asset_materialization_events()
               if "rows_inserted_or_changed" in e.materialization.metadata}
    assert changed["public/funds_ledger_entries"] == 0 and changed["public/payment_quotes"] == 0
    assert conn.execute("SELECT id, legacy_object_id, amount FROM funds_ledger_entries ORDER BY id").fetchall() == before


def test_points_wallet_defaults_and_doubles(domain_runs, conn, world):
    levels = {r[0]: r[1:] for r in conn.execute("SELECT legacy_object_id, min_points, perks FROM level_configs")}
    for d in world.docs["levelconfigs"]:
        min_points, perks = levels[str(d["_id"])]
        assert min_points == int(d["minPoints"]) and perks == d.get("perks", [])
    amounts = dict(conn.execute("SELECT legacy_object_id, amount FROM point_transactions").fetchall())
    assert all(amounts[str(d["_id"])] == int(d["amount"]) for d in world.docs["pointtransactions"])


def test_config_values_keep_their_json_types(domain_runs, conn, world):
    values = dict(conn.execute("SELECT key, value FROM config_settings").fetchall())
    types = dict(conn.execute("SELECT key, jsonb_typeof(value) FROM config_settings").fetchall())
    seen = set()
    for d in world.docs["configsettings"]:
        v = d["value"]
        assert values[d["key"]] == json.loads(dumps_json(to_json_value(v))), d["key"]
        kind = ("boolean" if isinstance(v, bool) else "number" if isinstance(v, (int, float, Decimal128))
                else "string" if isinstance(v, (str, ObjectId)) else "array" if isinstance(v, list) else "object")
        assert types[d["key"]] == kind, d["key"]
        seen.add(kind)
    assert seen == {"boolean", "number", "string", "array", "object"}


def test_addresses_one_primary_per_user_most_recent_wins(domain_runs, conn, world):
    primary = dict(conn.execute("SELECT u.legacy_object_id, a.legacy_object_id FROM addresses a "
                                "JOIN users u ON u.id = a.user_id WHERE a.is_primary").fetchall())
    claims = defaultdict(list)
    for d in world.docs["addresses"]:
        if d.get("isPrimary") is True:
            claims[str(d["user"])].append(d)
    assert any(len(c) > 1 for c in claims.values()), "the generator should include double primaries"
    assert set(primary) == set(claims)
    for user, docs in claims.items():
        latest = max(docs, key=lambda d: (d.get("updatedAt") or d["createdAt"], str(d["_id"])))
        assert primary[user] == str(latest["_id"])


def test_content_notifications_payload_round_trips(domain_runs, conn, world):
    data = dict(conn.execute("SELECT legacy_object_id, data FROM notifications").fetchall())
    for d in world.docs["notifications"]:
        want = json.loads(dumps_json(to_json_value(d["data"]))) if "data" in d else None
        assert data[str(d["_id"])] == want
    disputes = conn.execute("SELECT count(*) FILTER (WHERE payment_id IS NOT NULL) FROM disputes").fetchone()[0]
    assert disputes == sum(1 for d in world.docs["disputes"] if "payment" in d)


def test_chat_is_relational_and_round_trips(domain_runs, conn, mongo_client, source_db):
    """No JSONB left on chats; rebuilding each Mongo chat from the three relational tables
    gives back the document's participants and messages (ids, senders, order, text, times)."""
    jsonb = conn.execute("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
                         "AND table_name IN ('chats', 'chat_participants', 'chat_messages') "
                         "AND data_type IN ('json', 'jsonb')").fetchall()
    assert jsonb == []
    participants = defaultdict(list)
    for chat, user, role, joined, last_read in conn.execute(
            "SELECT c.legacy_object_id, u.legacy_object_id, p.role::text, p.joined_at, p.last_read_at "
            "FROM chat_participants p JOIN chats c ON c.id = p.chat_id JOIN users u ON u.id = p.user_id"):
        participants[chat].append({"user": user, "role": role, "joinedAt": joined, "lastReadAt": last_read})
    messages = defaultdict(list)
    for chat, mid, legacy, sender, body, attachments, sent, edited in conn.execute(
            "SELECT c.legacy_object_id, m.id, m.legacy_object_id, u.legacy_object_id, m.body, m.attachments, "
            "m.sent_at, m.edited_at FROM chat_messages m JOIN chats c ON c.id = m.chat_id "
            "JOIN users u ON u.id = m.sender_id ORDER BY m.sent_at, m.legacy_object_id"):
        assert mid == new_id("chat_messages", legacy)
        messages[chat].append({"_id": legacy, "sender": sender, "body": body, "attachments": attachments,
                               "sentAt": sent, "editedAt": edited})
    coll = mongo_client[source_db].get_collection("chats", codec_options=MONGO_READ)
    n = 0
    for doc in coll.find({}):
        key = str(doc["_id"])
        want_p = sorted(({"user": str(p["user"]), "role": p["role"], "joinedAt": p.get("joinedAt", doc["createdAt"]),
                          "lastReadAt": p.get("lastReadAt")} for p in doc["participants"]), key=lambda x: x["user"])
        assert sorted(participants[key], key=lambda x: x["user"]) == want_p, key
        want_m = sorted(({"_id": str(m["_id"]), "sender": str(m["sender"]), "body": m["body"],
                          "attachments": m.get("attachments", []), "sentAt": m["sentAt"], "editedAt": m.get("editedAt")}
                         for m in doc["messages"]), key=lambda x: (x["sentAt"], x["_id"]))
        assert messages[key] == want_m, key
        n += 1
    assert n == count(conn, "chats") > 0
    assert sum(len(v) for v in messages.values()) == count(conn, "chat_messages") > 10 * count(conn, "users")


# --- quarantine: unmappable documents of the new tables ---------------------------------

def _missing() -> ObjectId:
    return ObjectId("0" * 23 + "1")  # no document anywhere has this _id


def bad_documents(world) -> dict[str, list[tuple[dict, str]]]:
    """collection -> [(document, expected reason code)]: valid documents with one defect each."""
    at = dt.datetime(2026, 5, 1, tzinfo=UTC)
    seq = iter(range(1, 1000))

    def oid() -> ObjectId:
        return ObjectId(f"6a0000000000000000{next(seq):06x}")

    def copy(collection: str, pick=lambda d: True, **changes) -> dict:
        base = next(d for d in world.docs[collection] if pick(d))
        doc = {**base, "_id": oid(), **changes}
        return doc

    def without(doc: dict, *fields: str) -> dict:
        return {k: v for k, v in doc.items() if k not in fields}

    failed = lambda d: d["status"] == "failed"  # noqa: E731 (no pending-uniqueness interplay)
    user = world.docs["users"][0]["_id"]
    other = world.docs["users"][1]["_id"]

    def chat(**changes) -> dict:
        doc = {"_id": oid(), "type": "direct", "createdAt": at,
               "participants": [{"user": user, "role": "buyer", "joinedAt": at},
                                {"user": other, "role": "seller", "joinedAt": at}],
               "messages": [{"_id": oid(), "sender": user, "body": "Merhaba 👋", "sentAt": at},
                            {"_id": oid(), "sender": other, "body": "Hi", "sentAt": at}]}
        doc.update(changes)
        return doc

    dup = chat()
    dup["participants"].append({"user": user, "role": "admin", "joinedAt": at})
    no_body = chat()
    del no_body["messages"][1]["body"]
    ghost_sender = chat()
    ghost_sender["messages"][0]["sender"] = _missing()
    quoted = next(p for p in world.docs["payments"] if "quote" in p)
    return {
        "payments": [
            (copy("payments", failed, payer=_missing()), "missing_reference"),
            (copy("payments", failed, status="settled"), "unknown_enum"),
            (copy("payments", failed, amount="12.50"), "wrong_type"),
            (copy("payments", failed, amount=Decimal128("0.1234567890123456789")), "precision_loss"),
            (without(copy("payments", failed), "provider"), "missing_required"),
            ({**quoted, "_id": oid(), "status": "failed", "quote": {**quoted["quote"], "rate": "abc"}}, "wrong_type"),
        ],
        "fundsledgerentries": [
            (copy("fundsledgerentries", direction="sideways"), "unknown_enum"),
            (copy("fundsledgerentries", amount=Decimal128("1E-19")), "precision_loss"),
            (copy("fundsledgerentries", amount=Decimal128("-5")), "constraint_violation"),
        ],
        "chats": [(dup, "duplicate_key"), (no_body, "missing_required"), (ghost_sender, "missing_reference"),
                  (chat(messages="not an array"), "wrong_type")],
        "notifications": [(copy("notifications", user=_missing()), "missing_reference"),
                          (without(copy("notifications"), "title"), "missing_required")],
        "reviews": [(copy("reviews", rating=4.5), "not_integral"), (copy("reviews", rating=9), "constraint_violation")],
        "configsettings": [(without(copy("configsettings", key="broken.setting"), "value"), "missing_required")],
        "configsettinghistories": [(copy("configsettinghistories", setting=_missing()), "missing_reference")],
        "telegramlinks": [(copy("telegramlinks", telegramUserId="5123456789"), "wrong_type")],
        "telegramsessions": [(without(copy("telegramsessions"), "telegramUserId"), "missing_required")],
        "refreshtokens": [(copy("refreshtokens", expiresAt="tomorrow"), "wrong_type")],
        "releaseholds": [(copy("releaseholds", payment=_missing()), "missing_reference")],
        "deriveddestinations": [(copy("deriveddestinations", address="0xnew", derivationIndex=2.5), "not_integral")],
        "deriveddestinationsweeps": [(copy("deriveddestinationsweeps", destination=_missing()), "missing_reference")],
        "levelconfigs": [(copy("levelconfigs", level=99, minPoints=-5), "constraint_violation")],
        "pointtransactions": [(copy("pointtransactions", amount=1.5), "not_integral")],
        "trezoraccounts": [(copy("trezoraccounts", xpub="xpub-new", user=_missing()), "missing_reference")],
        "trezorderivedaddresses": [(copy("trezorderivedaddresses", address="bc1qnew", used="yes"), "wrong_type")],
        "shopsettings": [(copy("shopsettings", seller=other, paymentRails="trezor"), "wrong_type")],
        "addresses": [(copy("addresses", type="home"), "unknown_enum")],
        "blogposts": [(copy("blogposts", slug="new-slug", status="live"), "unknown_enum")],
        "disputes": [(copy("disputes", status="escalated"), "unknown_enum")],
    }


@pytest.fixture(scope="module")
def bad(world):
    return bad_documents(world)


@pytest.fixture(scope="module")
def bad_dump(tmp_path_factory, world, bad):
    docs = {name: list(v) for name, v in world.docs.items()}
    for name, items in bad.items():
        docs[name] = docs[name] + [d for d, _ in items]
    d = tmp_path_factory.mktemp("bad_dump")
    write_dump(d, "marketplace", docs)
    return d


@pytest.fixture(scope="module")
def bad_runs(definitions, stack_env, module_db, bad_dump):
    target = module_db()
    return target, migrate_domains(definitions, stack_env, target, mode="dump", dump=bad_dump)


def test_new_tables_have_bad_documents_for_every_new_collection(bad):
    core = {"users", "categories", "requesttemplates", "purchaserequests", "selleroffers"}
    assert {l.collection for l in all_loaders()} - core == set(bad)
    codes = {code for items in bad.values() for _, code in items}
    assert {"missing_reference", "unknown_enum", "wrong_type", "precision_loss", "missing_required"} <= codes


def test_unmappable_documents_are_quarantined_and_accounted_for(bad_runs, bad, world):
    target, results = bad_runs
    for d, result in results.items():
        # Quarantine never fails a run: counts and checksums pass with the quarantine set apart.
        assert result.success, (d, failed_checks(result))
    evaluations = {k: v for r in results.values() for k, v in check_evaluations(r).items()}
    by_collection = {l.collection: l for l in all_loaders()}
    with psycopg.connect(target, autocommit=True) as c:
        for collection, items in bad.items():
            loader = by_collection[collection]
            rows = {r[0]: r[1:] for r in c.execute(
                "SELECT legacy_id, collection, reason_code, reason, reasons, raw_bson, raw_json FROM migration.quarantine "
                "WHERE loader = %s AND resolved_at IS NULL", [loader.name]).fetchall()}
            assert set(rows) == {str(doc["_id"]) for doc, _ in items}, collection
            for doc, code in items:
                coll, reason_code, reason, reasons, raw_bson, raw_json = rows[str(doc["_id"])]
                assert coll == collection
                assert reason_code == code, (collection, reason)
                assert reason and reasons and reasons[0]["code"] == code
                assert bson.decode(bytes(raw_bson)) == bson.decode(bson.encode(doc))  # the raw document, byte for byte
                assert str(doc["_id"]) in raw_json
            # Counts and checksums account for the quarantined documents, table by table.
            for t in loader.tables:
                good = rows_of(t, world.docs[collection])
                quarantined = rows_of(t, [doc for doc, _ in items])
                rc = evaluations[(f"public/{t.table}", "row_count_parity")]
                assert rc.passed and evaluations[(f"public/{t.table}", "checksum_parity")].passed, t.table
                assert meta_value(rc, "expected_rows") == good == count(c, t.table), t.table
                assert meta_value(rc, "quarantined_rows") == quarantined, t.table
            q = evaluations[(f"public/{loader.root.table}", "quarantine_empty")]
            assert not q.passed and meta_value(q, "quarantined_documents") == len(items)


def test_same_source_twice_yields_same_ids(bad_runs, definitions, stack_env, module_db, bad_dump):
    first, _ = bad_runs
    second = module_db()
    results = migrate_domains(definitions, stack_env, second, mode="dump", dump=bad_dump)
    assert all(r.success for r in results.values())

    def ids(url):
        out = {}
        with psycopg.connect(url) as c:
            for loader in all_loaders():
                for t in loader.tables:
                    if t.has_legacy_id:
                        out[t.table] = dict(c.execute(f"SELECT legacy_object_id, id FROM public.{t.table}").fetchall())
            out["payment_quotes"] = dict(c.execute(
                "SELECT p.legacy_object_id, q.id FROM payment_quotes q JOIN payments p ON p.id = q.payment_id").fetchall())
        return out

    a, b = ids(first), ids(second)
    assert a == b
    for table, mapping in a.items():
        assert mapping, table
        for legacy, pk in mapping.items():
            assert pk == new_id(table, legacy), table
