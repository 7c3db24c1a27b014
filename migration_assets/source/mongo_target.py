"""The Mongo server as a write target (the reverse sync, PostgreSQL -> Mongo): written to only
when every host of its URI is on ``MIGRATION_MONGO_ALLOWED_HOSTS``, checked before any DNS
lookup or connection.

The URI's hosts are read here by hand, the way pymongo splits them, because pymongo's own
parser resolves ``mongodb+srv://`` names (DNS) and the check must come first. What cannot be
read with certainty is refused, never guessed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import unquote_plus

import pymongo
import pymongo.database
import pymongo.errors

from migration_assets.allowlist import host_allowed, parse_allowlist
from migration_assets.redaction import redact
from migration_assets.source.documents import QUERY_OPTIONS, SourceUnavailable
from migration_assets.source.live import driver_error

SCHEMES = ("mongodb://", "mongodb+srv://")
_NAME = re.compile(r"[A-Za-z0-9._-]+")  # a host name or IPv4 address: nothing DNS could read otherwise
_IPV6 = re.compile(r"\[([^\[\]]+)\](?::([^:]*))?")
# A query option naming hosts outside the authority (recent pymongo: SRV answers may then lie there).
_HOST_OPTIONS = {"srvallowedhostssuffix"}


class MongoTargetRefused(RuntimeError):
    """The Mongo host is not on the allowlist (or cannot be read); nothing was resolved or connected."""


def _refuse(uri: str, why: str) -> MongoTargetRefused:
    return MongoTargetRefused(f"refusing {redact(uri)}: {why}")


def _port_ok(port: str) -> bool:
    return port.isdigit() and 0 < int(port) <= 65535


def _host(entity: str, uri: str) -> tuple[str, bool]:
    """(host, port given) of one ``host[:port]`` of the host list."""
    if not entity:
        raise _refuse(uri, "an empty host in the host list (an extra comma?)")
    if entity.lower().endswith(".sock") or "/" in unquote_plus(entity):
        raise _refuse(uri, "a Unix socket host is not allowlisted")
    if entity.startswith("["):
        m = _IPV6.fullmatch(entity)
        try:
            host = str(ipaddress.IPv6Address(m.group(1).replace("%25", "%"))) if m else ""
        except ValueError:
            host = ""
        if not host or (m.group(2) is not None and not _port_ok(m.group(2))):
            raise _refuse(uri, f"{entity!r} is not an IPv6 address in brackets with an optional port")
        return host.lower(), m.group(2) is not None
    host, colon, port = entity.partition(":")
    if not _NAME.fullmatch(host) or (colon and not _port_ok(port)):
        raise _refuse(uri, f"{entity!r} is not a host name or address with an optional port")
    return host.lower(), bool(colon)


def mongo_hosts(uri: str) -> list[str]:
    """The hosts of a ``mongodb://`` or ``mongodb+srv://`` URI (for ``+srv`` the SRV name itself),
    lowercased, read without any DNS lookup. Anything else raises :class:`MongoTargetRefused`."""
    scheme = next((s for s in SCHEMES if uri.startswith(s)), None)  # pymongo's schemes are case-sensitive
    if scheme is None:
        raise MongoTargetRefused("refusing the Mongo URI: it does not start with mongodb:// or mongodb+srv://")
    rest = uri[len(scheme):]
    # The host list ends at the first '/' or '?' (pymongo cuts there too); the userinfo ends at its last '@'.
    authority = re.split(r"[/?]", rest, maxsplit=1)[0]
    if "@" in rest[len(authority):]:
        # a password with an unencoded '/' or '?' would be cut (and shown) as part of the hosts
        raise MongoTargetRefused(f"refusing the Mongo URI ({scheme}…): an '@' after its host list; "
                                 "percent-encode the user name, password and option values")
    query = rest.partition("?")[2]
    named = {unquote_plus(k).strip().lower() for k, _, _ in (p.partition("=") for p in re.split(r"[&;]", query))}
    if named & _HOST_OPTIONS:
        raise _refuse(uri, "srvAllowedHostsSuffix lets SRV answers name hosts outside the URI, "
                           "so the allowlist cannot check them")
    host_list = authority.rpartition("@")[2]
    if not host_list:
        raise _refuse(uri, "no host in the URI")
    hosts = [_host(e, uri) for e in host_list.split(",")]
    if scheme == "mongodb+srv://" and (len(hosts) != 1 or hosts[0][1]):
        raise _refuse(uri, "a mongodb+srv:// URI names exactly one host, without a port")
    return [h for h, _ in hosts]


def check_mongo_allowed(uri: str, allowed_hosts: Iterable[str]) -> list[str]:
    """Refuse ``uri`` unless every host is allowlisted; returns its hosts. Never resolves or connects."""
    if isinstance(allowed_hosts, str):  # the setting as written: iterating it would give characters
        allowed_hosts = parse_allowlist(allowed_hosts)
    allowed = [h.strip().lower() for h in allowed_hosts if h and h.strip()]
    hosts = mongo_hosts(uri)
    for h in hosts:
        if not host_allowed(h, allowed):
            raise MongoTargetRefused(
                f"refusing to write to {redact(uri)}: host {h!r} is not in MIGRATION_MONGO_ALLOWED_HOSTS "
                f"({', '.join(allowed) or 'empty'})"
            )
    return hosts


def open_mongo_target(uri: str, database: str, allowed_hosts: Iterable[str], *,
                      timeout_ms: int = 5000) -> pymongo.database.Database:
    """The guarded write target: checked first, then a client made like ``LiveSource``'s.
    The caller closes it with ``db.client.close()``."""
    check_mongo_allowed(uri, allowed_hosts)
    client = None
    try:
        client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms)
        return client.get_database(database, codec_options=QUERY_OPTIONS)
    except (pymongo.errors.PyMongoError, ValueError, TypeError) as e:
        if client is not None:
            client.close()
        raise SourceUnavailable(f"MongoDB URI {redact(uri)} is not usable: {driver_error(e, uri)}") from None
