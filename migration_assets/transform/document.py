"""One raw document through decode and transform, into rows or a rejection.

:class:`DocumentTransform` is the one interface: the compiled transform where the spec
compiles and the document is ordinary, the reference transform (``reference.py``, the
specification) for everything else, with the reference's own rejections and wording.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bson import ObjectId

from migration_assets.source.documents import decode, legacy_key, raw_id
from migration_assets.specs.model import LoaderSpec
from migration_assets.transform.compiled import compile_loader
from migration_assets.transform.reference import transform_document
from migration_assets.transform.results import DocResult, Rejected


def reference_document(loader: LoaderSpec, raw: bytes, ctx: Mapping[str, Any]) -> DocResult | Rejected:
    """The reference: decode, check the ``_id``, transform (``reference.transform_document``)."""
    ident = raw_id(raw)
    legacy_id = legacy_key(ident)
    if not isinstance(ident, ObjectId):
        return Rejected(legacy_id, raw, [{"code": "invalid_id", "field": "_id",
                                          "message": f"_id must be an ObjectId, got {type(ident).__name__}"}])
    try:
        doc = decode(raw)
    except Exception as e:  # InvalidBSON, invalid UTF-8 and friends
        return Rejected(legacy_id, raw, [{"code": "invalid_bson", "field": "$",
                                          "message": f"{type(e).__name__}: {e}"[:500]}])
    excluded = ctx.get("excluded", {})
    if legacy_id in excluded:
        return Rejected(legacy_id, raw, [excluded[legacy_id]], doc)
    result = transform_document(loader, doc, ctx, legacy_id)
    if not result.ok:
        return Rejected(legacy_id, raw, [p.as_dict() for p in result.problems], doc)
    result.raw, result.decoded = raw, doc
    return result


class DocumentTransform:
    """``raw -> DocResult | Rejected`` for one loader and collection context.

    ``compiled``: try the compiled transform first (``compiled.py``). ``fresh``: the loader's
    tables were empty when the load started, so the compiled code may turn references to
    the loader's own rows into their uuid5 at once (what resolution would give them)."""

    def __init__(self, loader: LoaderSpec, ctx: Mapping[str, Any], *, compiled: bool = True, fresh: bool = False):
        self.loader = loader
        self.ctx = ctx
        self.excluded = ctx.get("excluded", {})
        self.code = compile_loader(loader) if compiled else None
        self.fresh = fresh
        self.bailed = 0  # documents the compiled code handed to the reference

    def __call__(self, raw: bytes) -> DocResult | Rejected:
        if self.code is not None:
            result = self.code.try_document(raw, self.ctx, self.excluded, fresh=self.fresh)
            if result is not None:
                return result
            self.bailed += 1
        return reference_document(self.loader, raw, self.ctx)
