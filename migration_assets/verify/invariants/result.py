"""What an invariant check finds: passed or not, a sample of violations naming legacy ids,
exact counts by typed reason, and numeric measures for the UI."""

from __future__ import annotations

from dataclasses import dataclass, field

from migration_assets.specs.model import TableSpec

SAMPLE = 50


@dataclass(frozen=True)
class Violation:
    reason: str  # typed: e.g. orphan_reference, update_not_refused, balance_mismatch
    subject: str  # what is wrong, by legacy id (document, row, account key)
    detail: str = ""


@dataclass
class InvariantResult:
    name: str
    table: str
    violations: list[Violation] = field(default_factory=list)  # at most `limit` kept
    reasons: dict[str, int] = field(default_factory=dict)  # exact counts by reason
    measures: dict[str, int | float] = field(default_factory=dict)
    limit: int = SAMPLE
    # Reasons that fail the invariant with severity WARN only (surfaced, e.g. quarantined).
    warnings: frozenset[str] = frozenset()
    # Reasons that are only listed and fail nothing (an acknowledged ledger conflict).
    listed: frozenset[str] = frozenset({"acknowledged_conflict"})

    def add(self, reason: str, subject: str, detail: str = "", count: int = 1) -> None:
        self.reasons[reason] = self.reasons.get(reason, 0) + count
        if len(self.violations) < self.limit:
            self.violations.append(Violation(reason, subject, detail))

    @property
    def errors(self) -> int:
        return sum(n for r, n in self.reasons.items() if r not in self.warnings and r not in self.listed)

    @property
    def warned(self) -> int:
        return sum(n for r, n in self.reasons.items() if r in self.warnings and r not in self.listed)

    @property
    def passed(self) -> bool:
        return not (self.errors or self.warned)

    @property
    def subjects(self) -> list[str]:
        return [v.subject for v in self.violations]

    def rows(self) -> list[tuple[str, str, str]]:
        """(reason, subject, detail) of the sampled violations, for a table."""
        return [(v.reason, v.subject, v.detail) for v in self.violations]


def row_label_sql(table: TableSpec) -> tuple[str, str]:
    """(join, expression) naming a row of ``table`` by legacy ids."""
    if table.has_legacy_id:
        return "", "t.legacy_object_id"
    parent = table.column(table.parent_column).ref_table if table.parent_column else None
    keys = [k for k in table.key if k != table.parent_column]
    rest = " || ' ' || ".join(f"'{k}=' || coalesce(t.{k}::text, 'null')" for k in keys) or "''"
    if parent:
        return (f" LEFT JOIN public.{parent} lp ON lp.id = t.{table.parent_column}",
                f"coalesce(lp.legacy_object_id, 'id ' || t.{table.parent_column}::text) || ' ' || {rest}")
    return "", "t.id::text"
