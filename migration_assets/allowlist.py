"""Which hosts a write may go to: the one matching rule of both allowlists
(``MIGRATION_PG_ALLOWED_HOSTS`` for PostgreSQL, ``MIGRATION_MONGO_ALLOWED_HOSTS`` for Mongo).
Ground floor: imports nothing of the project.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable


def parse_allowlist(text: str) -> list[str]:
    """The entries of a comma-separated allowlist (hosts, CIDRs or ``*``), lowercased."""
    return [e.strip().lower() for e in text.split(",") if e.strip()]


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """``host`` is an entry (case-insensitive, IPv6 brackets ignored), or ``*`` is one, or it
    is an IP address inside a CIDR entry. Names are never resolved: a name matches only itself."""
    allowed = [e.strip().lower() for e in allowed if e and e.strip()]
    h = host.lower().strip("[]")
    if h in allowed or "*" in allowed:
        return True
    for entry in allowed:
        if "/" in entry and not entry.startswith("/"):  # a CIDR, not a socket directory
            try:
                if ipaddress.ip_address(h) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False
