"""Markdown tables, the one renderer behind the source contract, the UI's metadata and the
readiness evidence. Ground floor: imports nothing of the project."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def cell(value: Any, width: int | None = None) -> str:
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return text[:width] if width else text


def md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, width: int | None = None) -> str:
    """A markdown table; ``width`` cuts long cells (UI metadata), the contract keeps them whole."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v, width) for v in r) + " |" for r in rows]
    return "\n".join(lines)
