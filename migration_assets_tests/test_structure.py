"""The structure is checked, not remembered: packages follow the data flow, nothing imports
a package above it, there are no import circles, no module reaches into another's private
names, the pure stages never import dagster, and the tree is lint-clean."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "migration_assets"

# Floors, lowest first: a module may import only its own floor and the floors below it.
FLOORS = [
    {"redaction", "markdown", "processes", "allowlist"},
    {"specs"},
    {"tables"},
    {"source"},
    {"transform"},
    {"target"},
    {"load"},
    {"verify"},
    {"cutover"},
    {"generator"},
    {"factory"},
    {"orchestration"},
    {"defs", "definitions"},
    {"cli", "console"},
]
PURE = set().union(*FLOORS[:10])
FLOOR = {name: i for i, names in enumerate(FLOORS) for name in names}


def modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def top(module: str) -> str:
    """The package (or top-level module) of ``migration_assets.x.y``: ``x``."""
    return module.split(".")[1] if module.count(".") else ""


def imports(path: Path, name: str) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every import in the file."""
    tree = ast.parse(path.read_text())
    out = []
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            out.append((base, [a.name for a in node.names], node.lineno))
    return out


def project_edges() -> dict[str, set[str]]:
    mods = modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for target, names, _ in imports(path, name):
            if not target.startswith("migration_assets"):
                continue
            for n in names or [""]:
                full = f"{target}.{n}" if n and f"{target}.{n}" in mods else target
                if full in mods and full != name:
                    edges[name].add(full)
    return edges


def test_every_package_is_on_a_floor_and_says_what_it_holds():
    for path in PKG.iterdir():
        if path.name.startswith((".", "__")) or path.suffix not in ("", ".py") or path.name == "py.typed":
            continue
        assert path.stem in FLOOR, f"{path.name} is on no floor of test_structure.FLOORS"
        if path.is_dir():
            doc = ast.get_docstring(ast.parse((path / "__init__.py").read_text()))
            assert doc, f"{path.name}/__init__.py has no docstring saying what it holds"


def test_no_package_imports_one_above_it():
    offenders = []
    for name, path in modules().items():
        own = FLOOR.get(top(name))
        if own is None:
            continue
        for target, _, line in imports(path, name):
            if target.startswith("migration_assets.") and FLOOR.get(top(target), -1) > own:
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert offenders == []


def test_no_import_circles():
    edges = project_edges()
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                circles.append(sorted(scc))

    sys.setrecursionlimit(10_000)
    for v in edges:
        if v not in index:
            visit(v)
    assert circles == []


def test_no_module_reaches_into_private_names():
    """No ``from x import _y`` across modules, and no ``obj._y`` but on ``self`` / ``cls``
    (pymongo's and the standard library's private attributes included)."""
    offenders = []
    for name, path in modules().items():
        for target, names, line in imports(path, name):
            offenders += [f"{path.relative_to(ROOT)}:{line} imports {target}.{n}"
                          for n in names if n.startswith("_") and not n.startswith("__")]
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} reads .{node.attr}")
    assert offenders == []


FENCED = "migration_assets.orchestration.dagster_internals"
# Dagster's storage, reached around the instance's public methods, and the thread interruption
# the command line once cancelled runs with.
INTERNAL_CALLS = {"event_log_storage", "run_storage", "schedule_storage", "claim_concurrency_slot",
                  "free_concurrency_slot_for_step", "free_concurrency_slots_for_run", "PyThreadState_SetAsyncExc"}


def test_only_the_fenced_module_reaches_into_dagster_internals():
    """``dagster._*`` imports and direct storage calls live in one module (ARCHITECTURE.md says
    why); everything else uses Dagster's public API."""
    offenders = []
    for name, path in modules().items():
        if name == FENCED:
            continue
        for target, _, line in imports(path, name):
            if target.startswith("dagster._"):
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in INTERNAL_CALLS:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} uses .{node.attr}")
    assert offenders == []
    fenced = modules()[FENCED].read_text()
    assert "dagster._core" in fenced and "event_log_storage" in fenced  # the fence holds what it says


def test_pure_stages_never_import_dagster():
    static = [f"{path.relative_to(ROOT)}:{line}"
              for name, path in modules().items() if top(name) in PURE
              for target, _, line in imports(path, name) if target.split(".")[0] == "dagster"]
    assert static == []
    pure = sorted(m for m in modules() if top(m) in PURE and not m.endswith("__main__"))
    code = ("import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in pure)
            + "from migration_assets.specs.registry import all_loaders; all_loaders()\n"
            + "print('dagster' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_lint_clean():
    """ruff (unused names, undefined names, import order) over the code, tests and bench."""
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "migration_assets", "migration_assets_tests", "bench"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
