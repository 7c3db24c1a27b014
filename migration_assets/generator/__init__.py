"""Deterministic sample data (seed + scale) for every collection the source contract lists."""

from __future__ import annotations

import importlib
import pkgutil

from migration_assets.generator.world import World


def steps():
    """Generation steps in order: each module's ``STEPS``, modules ordered by ``ORDER``."""
    import migration_assets.generator as pkg

    mods = []
    for info in pkgutil.iter_modules(pkg.__path__):
        mod = importlib.import_module(f"{pkg.__name__}.{info.name}")
        if hasattr(mod, "STEPS"):
            mods.append(mod)
    mods.sort(key=lambda m: getattr(m, "ORDER", 100))
    return [s for m in mods for s in m.STEPS]


def generate(seed: int = 7, scale: float = 1.0) -> World:
    world = World(seed, scale)
    for step in steps():
        step(world)
    return world
