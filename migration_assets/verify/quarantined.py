"""Which occurrences of which ``_id`` the open quarantine holds, as the scans ask it."""

from __future__ import annotations

from collections import Counter

import psycopg

from migration_assets.target.bookkeeping import open_quarantine_keys


class QuarantineIndex:
    """A document quarantined for its content is skipped in every occurrence; for an ``_id``
    quarantined only as a duplicate, the first occurrence loaded and later ones did not.
    ``skip`` is the ``skip`` of :func:`migration_assets.source.scan.scan`."""

    def __init__(self, conn: psycopg.Connection, loader: str):
        self.dupes, self.content = open_quarantine_keys(conn, loader)
        self.seen: Counter[str] = Counter()
        self.exclude: set[str] = set()  # documents left out of both sides for another reason (acknowledged)

    def ids(self) -> set[str]:
        return set(self.content)

    def reset(self) -> None:
        """Forget the occurrences seen (before another scan of the source)."""
        self.seen.clear()

    def skip(self, key: str) -> bool:
        self.seen[key] += 1
        if key in self.content:
            return True
        return key in self.dupes and self.seen[key] > 1

    def scanner(self):
        """``skip`` for a new scan (the occurrence count starts over)."""
        self.reset()
        return self.skip
