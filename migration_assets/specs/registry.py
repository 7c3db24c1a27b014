"""The loader registry: every ``LOADER`` under ``migration_assets.tables``, in FK order, and
lookups by domain, table and entity name.

The registry finds the table modules by walking that package by name (the one place a
lower package reaches the specs written on top of it). A module's place names its loader:
``tables/<domain>/<name>.py`` must define a loader of that domain and that name.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from functools import cache

from migration_assets.specs.model import LoaderSpec, TableSpec

DOMAINS = ("auth", "marketplace", "payments", "points_wallet", "config_ops", "content_social", "chat")
TABLES_PACKAGE = "migration_assets.tables"


@cache
def all_loaders() -> tuple[LoaderSpec, ...]:
    """Every ``LOADER`` defined under ``migration_assets.tables``, in dependency order."""
    pkg = importlib.import_module(TABLES_PACKAGE)
    found: list[LoaderSpec] = []
    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        module = importlib.import_module(info.name)
        loader = getattr(module, "LOADER", None)
        if isinstance(loader, LoaderSpec):
            check_place(loader, info.name)
            found.append(loader)
    names = [l.name for l in found]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ValueError(f"duplicate loader names: {sorted(dupes)}")
    return tuple(toposort(found))


def check_place(loader: LoaderSpec, module: str) -> None:
    """``tables.<domain>.<name>`` holds the loader ``name`` of ``domain``."""
    parts = module[len(TABLES_PACKAGE) + 1:].split(".")
    if parts != [loader.domain, loader.name]:
        raise ValueError(f"{module} defines loader {loader.name!r} of domain {loader.domain!r}; "
                         f"it belongs in tables/{loader.domain}/{loader.name}.py")
    if loader.domain not in DOMAINS:
        raise ValueError(f"{module}: unknown domain {loader.domain!r} (one of {', '.join(DOMAINS)})")


def toposort(loaders: list[LoaderSpec]) -> list[LoaderSpec]:
    by_table = {t: l for l in loaders for t in l.table_names}
    done: set[str] = set()
    out: list[LoaderSpec] = []

    def visit(l: LoaderSpec, stack: tuple[str, ...]) -> None:
        if l.name in done:
            return
        if l.name in stack:
            raise ValueError(f"FK cycle through loaders {stack + (l.name,)}; mark one column deferred")
        for parent in sorted(l.external_parents()):
            if parent not in by_table:
                raise ValueError(f"{l.name} references {parent}, which no loader produces")
            visit(by_table[parent], stack + (l.name,))
        done.add(l.name)
        out.append(l)

    for l in sorted(loaders, key=lambda x: x.name):
        visit(l, ())
    return out


def all_tables() -> dict[str, tuple[LoaderSpec, TableSpec]]:
    return {t.table: (l, t) for l in all_loaders() for t in l.tables}


def loaders_in_domain(domain: str) -> tuple[LoaderSpec, ...]:
    return tuple(l for l in all_loaders() if l.domain == domain)


def loader_for_table(table: str) -> LoaderSpec:
    return all_tables()[table][0]


def loader_named(name: str) -> LoaderSpec:
    for l in all_loaders():
        if l.name == name:
            return l
    raise KeyError(name)


def ancestors(loader: LoaderSpec) -> list[LoaderSpec]:
    """The loaders whose tables ``loader`` references (transitively), parents first."""
    tables = all_tables()
    out: list[LoaderSpec] = []

    def visit(l: LoaderSpec) -> None:
        for parent in sorted(l.external_parents()):
            owner = tables.get(parent, (None,))[0]
            if owner is None or owner.name == loader.name or any(o.name == owner.name for o in out):
                continue
            visit(owner)
            out.append(owner)

    visit(loader)
    return out


# --- entity names --------------------------------------------------------------------------

def entity_key(name: str) -> str:
    """An entity name folded for matching: case, ``_``, ``-`` and spaces ignored."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def singular(key: str) -> str:
    if key.endswith("ies"):
        return key[:-3] + "y"
    if key.endswith("ses") or key.endswith("xes"):
        return key[:-2]
    if key.endswith("s"):
        return key[:-1]
    return key


def entity_names(loader: LoaderSpec) -> set[str]:
    """Folded names an application may write for this loader's data: its table, collection
    and loader names, singular and plural (``funds_ledger_entries``, ``fundsledgerentries``,
    ``FundsLedgerEntry``), and the Mongoose model names its ``models`` lists."""
    out: set[str] = set()
    for name in (loader.name, loader.collection, *loader.table_names, *loader.models):
        key = entity_key(name)
        out |= {key, singular(key)}
    return out


def entity_index() -> dict[str, tuple[LoaderSpec, str | None]]:
    """folded entity name -> (loader, table it names, or None for the loader's root)."""
    index: dict[str, tuple[LoaderSpec, str | None]] = {}
    for l in all_loaders():
        for name in entity_names(l):
            index.setdefault(name, (l, None))
        for t in l.table_names:  # a child table's own name points at that table
            key = entity_key(t)
            index[key] = index[singular(key)] = (l, t)
    return index


def loader_for_entity(entity: str) -> tuple[LoaderSpec, str] | None:
    """The loader and table an entity name (as the application writes it into
    ``pg_dualwrite_gaps``) stands for: table, collection, loader or Mongoose model name,
    singular or plural, camelCase or snake_case. None when no loader migrates it."""
    key = entity_key(entity)
    hit = entity_index().get(key) or entity_index().get(singular(key))
    if hit is None:
        return None
    loader, table = hit
    return loader, table or loader.root.table
