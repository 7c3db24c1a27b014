"""Connection strings without their secrets, for every message an operator or a log sees.

One module for both ends: Mongo URIs (``mongodb://user:pw@host/?authMechanismProperties=…``)
and libpq URLs or ``key=value`` strings (``password=…``). Ground floor: imports nothing of
the project.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

# Query options (either end) whose value is a secret.
SECRET_KEYS = ("password", "sslpassword", "passfile", "authmechanismproperties", "tlscertificatekeyfilepassword")
MASK = "***"
_KEY_VALUE = re.compile(r"\b(" + "|".join(SECRET_KEYS) + r")\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def _pairs(query: str):
    return (pair.partition("=") for pair in query.split("&") if pair)


def redact(url: str) -> str:
    """``url`` with the password and every secret option masked."""
    if "://" not in url:  # libpq key=value form
        return _KEY_VALUE.sub(rf"\1={MASK}", url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable connection string>"
    netloc = parts.netloc
    if "@" in netloc:
        creds, hosts = netloc.rsplit("@", 1)
        netloc = f"{creds.split(':', 1)[0]}:{MASK}@{hosts}" if ":" in creds else f"{creds}@{hosts}"
    query = "&".join(f"{k}={MASK}" if k.lower() in SECRET_KEYS else (f"{k}={v}" if v else k)
                     for k, _, v in _pairs(parts.query))
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def secrets(url: str) -> list[str]:
    """The secret values in ``url`` (raw and percent-decoded), longest first."""
    found: list[str] = []
    if "://" not in url:
        for _, value in _KEY_VALUE.findall(url):
            found.append(value.strip("'"))
    else:
        try:
            parts = urlsplit(url)
            if parts.password:
                found += [parts.password, unquote(parts.password)]
            for k, _, v in _pairs(parts.query):
                if k.lower() in SECRET_KEYS and v:
                    found += [v, unquote(v)]
        except ValueError:
            pass
    return sorted({s for s in found if s}, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """``text`` (a driver's error message, which may quote its input) with ``url``'s secrets masked."""
    for secret in secrets(url):
        text = text.replace(secret, MASK)
    return text
