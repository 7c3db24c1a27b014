"""Write generated collections to a live Mongo (pymongo) and/or a mongodump directory."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import bson


def write_mongo(db, collections: Mapping[str, Sequence[dict[str, Any]]], *, chunk: int = 1000, clear: bool = True) -> dict[str, int]:
    """Insert into ``db``; ``clear`` empties each collection first (delete_many: works on
    servers without ``drop``)."""
    counts = {}
    for name, docs in collections.items():
        coll = db[name]
        if clear:
            coll.delete_many({})
        for i in range(0, len(docs), chunk):
            coll.insert_many(docs[i:i + chunk], ordered=True)
        counts[name] = len(docs)
    return counts


def write_dump(directory: str | Path, database: str, collections: Mapping[str, Sequence[dict[str, Any]]],
               raw: Mapping[str, Sequence[bytes]] | None = None) -> Path:
    """mongodump layout: ``<dir>/<db>/<coll>.bson`` + ``<coll>.metadata.json``. ``raw`` adds
    pre-encoded (possibly malformed) documents, which only a dump can carry."""
    base = Path(directory) / database
    base.mkdir(parents=True, exist_ok=True)
    names = set(collections) | set(raw or {})
    for name in sorted(names):
        with open(base / f"{name}.bson", "wb") as f:
            for doc in collections.get(name, ()):
                f.write(bson.encode(doc))
            for blob in (raw or {}).get(name, ()):
                f.write(blob)
        meta = {"options": {}, "indexes": [{"v": 2, "key": {"_id": 1}, "name": "_id_"}],
                "uuid": "", "collectionName": name, "type": "collection"}
        (base / f"{name}.metadata.json").write_text(json.dumps(meta))
    return base
