"""categories (Mongo ``categories``) -> ``categories``, a self-referencing tree.

Two rules from the seed:
* ``parent`` is a self-reference, written once every category row exists (deferred);
  a category whose parent is absent or quarantined is quarantined itself.
* Active names are unique by ``lower(btrim(name))`` (migration 0009). Mongo holds
  duplicates differing only by case or spaces: the oldest (``createdAt``, then ``_id``)
  stays active, later ones are migrated inactive, exactly as 0009 deactivated them.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from migration_assets.specs.columns import demote_duplicates, flag_unless_demoted, id_column, legacy_column
from migration_assets.specs.kinds import BOOL, INT, TEXT, TIMESTAMP, Ref
from migration_assets.specs.model import BusinessRule, Column, LoaderSpec, TableSpec


def normalized_name(name: str) -> str:
    """PostgreSQL's ``lower(btrim(name))``: btrim strips spaces only."""
    return name.strip(" ").lower()


def find_demoted(docs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Active categories whose normalized name an older active one holds (0009's ranking)."""
    return {"demoted": demote_duplicates(
        docs,
        flagged=lambda d: d.get("isActive", True) is True and isinstance(d.get("name"), str),
        group=lambda d: normalized_name(d["name"]),
        rank=lambda d: (d.get("createdAt"), str(d["_id"])),
    )}


CATEGORIES = TableSpec(
    table="categories",
    description="Marketplace category tree; active names unique by lower(btrim(name)).",
    columns=(
        id_column("categories"),
        legacy_column(),
        Column("name", TEXT, "name", required=True),
        Column("slug", TEXT, "slug", required=True),
        Column("description", TEXT, "description"),
        Column("parent_id", Ref("categories"), "parent", deferred=True),
        Column("is_active", BOOL, compute=flag_unless_demoted("isActive", True, "demoted"),
               lineage=("isActive", "name", "createdAt"), required=True,
               doc="isActive, except later duplicates of an active name (migration 0009 rule)"),
        Column("sort_order", INT, "sortOrder", required=True, default=0),
        Column("created_at", TIMESTAMP, "createdAt", required=True),
        Column("updated_at", TIMESTAMP, "updatedAt"),
    ),
    rules=(
        BusinessRule(
            "active_category_names_unique", "active category names unique by lower(btrim(name))",
            "duplicate_active_name",
            """SELECT string_agg(legacy_object_id, ', ' ORDER BY legacy_object_id),
                      'active categories named ' || quote_literal(lower(btrim(name)))
               FROM public.categories WHERE is_active GROUP BY lower(btrim(name)) HAVING count(*) > 1 ORDER BY 1""",
            guard_index="categories_active_name_norm_uq",
        ),
    ),
)

LOADER = LoaderSpec(
    name="categories",
    collection="categories",
    domain="marketplace",
    tables=(CATEGORIES,),
    prepare=find_demoted,
    flags=("CATEGORY_STORE", "REPO_MARKETPLACE"),
)
