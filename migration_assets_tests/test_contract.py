"""The source contract is current, the generator covers every collection it lists, and every
generated document conforms to it (transforms into rows without a single problem)."""

from __future__ import annotations

from pathlib import Path

import bson
import pytest

from migration_assets.generator import generate
from migration_assets.source.documents import decode
from migration_assets.specs.contract import render_contract
from migration_assets.specs.registry import all_loaders
from migration_assets.transform.reference import transform_document

pytestmark = pytest.mark.unit

CONTRACT = Path(__file__).resolve().parents[1] / "docs" / "source-contract.md"


def test_contract_document_is_current():
    assert CONTRACT.exists(), "run: python -m migration_assets.specs.contract > docs/source-contract.md"
    assert CONTRACT.read_text(encoding="utf-8") == render_contract() + "\n", (
        "docs/source-contract.md is stale; run: python -m migration_assets.specs.contract > docs/source-contract.md")


def test_contract_lists_every_collection():
    text = render_contract()
    for loader in all_loaders():
        assert f"## {loader.collection}\n" in text, loader.collection


@pytest.fixture(scope="module")
def world_scale_1():
    return generate(seed=7, scale=1.0)


def test_generator_covers_every_collection(world_scale_1):
    collections = {l.collection for l in all_loaders()}
    assert collections == set(world_scale_1.docs), "generator and specs disagree on collections"
    for name in collections:
        assert world_scale_1.docs[name], f"{name}: no generated documents"


def test_generator_volumes_are_realistic(world_scale_1):
    docs = world_scale_1.docs
    users = len(docs["users"])
    messages = sum(len(c.get("messages", [])) for c in docs["chats"])
    assert len(docs["fundsledgerentries"]) > 10 * users
    assert len(docs["notifications"]) > 20 * users
    assert messages > 10 * users
    assert world_scale_1.total() < 12_000  # the local jongodb slows down past ~20k documents


def test_generated_ledger_amounts_are_positive_decimal128(world_scale_1):
    from bson import Decimal128

    amounts = [e["amount"] for e in world_scale_1.docs["fundsledgerentries"]]
    assert all(isinstance(a, Decimal128) and a.to_decimal() > 0 for a in amounts)


def test_generator_is_deterministic():
    a, b = generate(seed=3, scale=0.2), generate(seed=3, scale=0.2)
    assert {k: [bson.encode(d) for d in v] for k, v in a.docs.items()} == \
           {k: [bson.encode(d) for d in v] for k, v in b.docs.items()}


def test_every_generated_document_conforms(world_scale_1):
    """Through a BSON round trip, as the loader sees them: no document yields a problem."""
    problems = []
    for loader in all_loaders():
        docs = [decode(bson.encode(d)) for d in world_scale_1.docs[loader.collection]]
        ctx = loader.prepare(iter(docs)) if loader.prepare else {}
        for doc in docs:
            result = transform_document(loader, doc, ctx, str(doc["_id"]))
            problems += [(loader.collection, str(doc["_id"]), p.as_dict()) for p in result.problems]
    assert problems == []
