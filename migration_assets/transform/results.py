"""What transforming one document yields: its rows and deferred references
(:class:`DocResult`), or a rejection with every reason (:class:`Rejected`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from migration_assets.source.documents import decode
from migration_assets.specs.kinds import LegacyRef


@dataclass(frozen=True)
class Problem:
    code: str
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "field": self.field, "message": self.message}


@dataclass
class Deferred:
    """A reference written after its target loads (self-references, the selectedOffer remap)."""

    table: str
    column: str
    row: LegacyRef
    ref: LegacyRef


@dataclass
class DocResult:
    """A document's rows (per table, Python values ready for COPY; references still
    :class:`LegacyRef` until resolved), its deferred references, and its raw bytes."""

    legacy_id: str
    rows: dict[str, list[list[Any]]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    deferred: list[Deferred] = field(default_factory=list)
    raw: bytes = b""
    decoded: Mapping[str, Any] | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def doc(self) -> Mapping[str, Any]:
        """The reference decoding of ``raw`` (quarantine keeps it readable), made on demand."""
        if self.decoded is None:
            self.decoded = decode(self.raw)
        return self.decoded

    def reject(self, code: str, field_name: str, message: str) -> None:
        self.problems.append(Problem(code, field_name, message))


@dataclass
class Rejected:
    """A document that cannot be loaded, with every reason; it goes to quarantine whole."""

    legacy_id: str
    raw: bytes
    problems: list[dict[str, str]]
    doc: Mapping[str, Any] | None = None

    @property
    def code(self) -> str:
        return self.problems[0]["code"]


def rejected(result: DocResult | Rejected, problems: list[dict[str, str]]) -> Rejected:
    """``result`` turned down for ``problems`` (a missing parent, a refused constraint, a
    duplicated ``_id``), keeping its raw bytes and readable copy."""
    if isinstance(result, Rejected):
        return Rejected(result.legacy_id, result.raw, problems + result.problems, result.doc)
    return Rejected(result.legacy_id, result.raw, problems, result.doc)
