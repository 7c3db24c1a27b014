"""Spec -> straight-line Python: the code generation the compiled transform and the compiled
canonical rows (``verify/compiled_canon.py``) share. Generated from the specs, never from
data; anything the generated code does not handle raises :class:`Bail`, and its caller
takes the reference path for that document."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from bson import Decimal128, ObjectId
from bson.datetime_ms import DatetimeMS

from migration_assets.specs.model import MISSING, Column, TableSpec, get_path

UTC = dt.timezone.utc


class Bail(Exception):
    """A value the compiled code does not handle: the document takes the reference path."""


def base_env() -> dict[str, Any]:
    """Names every generated function may use."""
    return {"MISSING": MISSING, "Bail": Bail, "ObjectId": ObjectId, "Decimal128": Decimal128,
            "DatetimeMS": DatetimeMS, "datetime": dt.datetime, "UTC": UTC, "get_path": get_path,
            "Mapping": Mapping}


def path_expr(base: str, path: str, env: dict[str, Any], *, generic: bool = False) -> str:
    """Expression reading ``path`` from ``base`` (MISSING when absent). ``base`` is a dict
    unless ``generic`` (array elements of scalar tables may be anything)."""
    parts = path.split(".")
    if len(parts) == 1 and not generic:
        return f"{base}.get({parts[0]!r}, MISSING)"
    key = f"_p{len(env)}"
    env[key] = path
    if len(parts) == 2 and not generic:
        # inline the common two-level read; anything but a plain dict goes to get_path
        inner = f"_t.get({parts[1]!r}, MISSING)"
        return (f"({inner} if type(_t := {base}.get({parts[0]!r}, MISSING)) is dict "
                f"else (MISSING if _t is MISSING or not isinstance(_t, Mapping) else get_path({base}, {key})))")
    return f"get_path({base}, {key})"


def value_expr(column: Column, ci: str, env: dict[str, Any], scalar: bool = False) -> str:
    """Expression for ``resolve_source(column, source, doc, index, ctx)`` before defaults."""
    if column.compute is not None:
        env[f"compute_{ci}"] = column.compute
        return f"compute_{ci}(src, doc, ctx)"
    if column.path == "$index":
        return "idx"
    if column.path == "$element":
        return "src"
    if column.path and column.path.startswith("$root."):
        return path_expr("doc", column.path[len("$root."):], env)
    if not column.path:
        return "MISSING"
    return path_expr("src", column.path, env, generic=scalar)


def default_lines(column: Column, ci: str, env: dict[str, Any]) -> list[str]:
    if column.default is MISSING:
        return []
    env[f"default_{ci}"] = column.default
    return [f"if v is MISSING: v = default_{ci}"]


def row_loop(table: TableSpec, env: dict[str, Any], *, strict: bool) -> list[str]:
    """Loop header lines binding ``src``/``idx`` per row of ``table``; the body follows
    indented by four spaces. ``strict`` (the transform) bails where the reference rejects;
    otherwise (canonical rows) it skips what ``canonical.source_rows`` skips."""
    mode, path = table.rows.mode, table.rows.path
    if mode == "root":
        return ["src = doc", "idx = 0", "if True:"]
    lines = [f"cont = {path_expr('doc', path, env)}"]
    if mode == "embedded":
        lines.append("if cont is not MISSING and cont is not None and type(cont) is not dict: raise Bail")
        return lines + ["src = cont", "idx = 0", "if cont is not MISSING and cont is not None:"]
    if strict:
        lines.append("if cont is not MISSING and cont is not None and type(cont) is not list: raise Bail")
    lines.append("for idx, src in (enumerate(cont) if type(cont) is list else ()):")
    if not table.scalar_elements:
        if strict:
            lines.append("    if type(src) is not dict: raise Bail")
        else:
            lines += ["    if type(src) is not dict:", "        if isinstance(src, Mapping): raise Bail", "        continue"]
    return lines


def build(source: str, env: dict[str, Any], name: str, label: str) -> Callable:
    """Compile generated ``source`` and return its function ``name``."""
    code = compile(source, f"<compiled {label}>", "exec")
    exec(code, env)  # generated from the specs above, never from data
    return env[name]
