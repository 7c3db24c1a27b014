"""The collection-level context a transform reads: rules no single document decides.

* Self-references that point nowhere: documents that fail their own transform are invalid,
  and a self-reference to an invalid or absent document makes the referrer invalid too (to a
  fixpoint).
* ``loader.prepare``: the spec's own collection rules (demoted duplicate category names,
  older primary addresses), computed from the valid documents.

A load, a re-sync and every verification compute it the same way, from the source alone: a
document a constraint refused still ranks among its name's duplicates (it is the rightful
holder, refused for another reason), so the rows that loaded are compared with what loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from migration_assets.source.documents import Source
from migration_assets.source.scan import scan
from migration_assets.specs.kinds import legacy_hex
from migration_assets.specs.model import LoaderSpec
from migration_assets.transform.reference import transform_document


def needs_context(loader: LoaderSpec) -> bool:
    return bool(loader.self_deferred) or loader.prepare is not None


def prepare_context(loader: LoaderSpec, source: Source) -> dict[str, Any]:
    """The context of ``loader``'s collection (empty when its spec needs none)."""
    if not needs_context(loader):
        return {}
    docs: dict[str, Mapping[str, Any]] = {}
    invalid: dict[str, dict[str, str]] = {}
    for d in scan(source, loader.collection):
        if d.skipped or d.doc is None:
            continue
        res = transform_document(loader, d.doc, {}, d.key)
        own_problems = [p for p in res.problems if p.code != "missing_reference"]
        if own_problems:
            invalid[d.key] = own_problems[0].as_dict()
        docs[d.key] = d.doc
    excluded = _dangling_self_references(loader, docs, invalid)
    ctx: dict[str, Any] = {"excluded": excluded}
    if loader.prepare is not None:
        ctx.update(loader.prepare(d for k, d in docs.items() if k not in invalid and k not in excluded))
    return ctx


def _dangling_self_references(loader: LoaderSpec, docs: Mapping[str, Mapping[str, Any]],
                              invalid: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    excluded: dict[str, dict[str, str]] = {}
    changed = True
    while changed:
        changed = False
        for key, doc in docs.items():
            if key in invalid or key in excluded:
                continue
            for table, column in loader.self_deferred:
                ref = doc.get(column.path) if column.path else None
                if ref is None:
                    continue
                try:
                    ref_key = legacy_hex(ref)
                except Exception:
                    continue
                if ref_key not in docs or ref_key in invalid or ref_key in excluded:
                    why = "absent from the source" if ref_key not in docs else "quarantined"
                    excluded[key] = {"code": "missing_reference", "field": column.path,
                                     "message": f"{table.table}.{column.name} -> {ref_key} is {why}"}
                    changed = True
                    break
    return excluded
