"""user addresses (Mongo ``addresses``) -> ``addresses`` (sql/0016).

Document shape::

    {_id, user: ObjectId(users), type?, isPrimary?: bool, label?, recipientName?, line1,
     line2?, city, region?, postalCode?, country: "ISO-3166 alpha-2", phone?, createdAt,
     updatedAt?}

One primary address per user: PostgreSQL enforces it with a partial unique index (0016),
Mongo never did, and older documents of some users hold two ``isPrimary: true``. Rule (the
address-store's own "setting a primary unsets the others"): of a user's addresses claiming
primary, the most recently set one -- latest ``updatedAt`` (else ``createdAt``), then the
greater ``_id`` -- stays primary; the others are migrated as non-primary. Nothing is
dropped. Addresses saved before types/primaries existed lack ``type`` (-> shipping) and
``isPrimary`` (-> false). Moves with ``ADDRESS_STORE``.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from migration_assets.specs.columns import (
    demote_duplicates,
    flag_unless_demoted,
    id_column,
    legacy_column,
    postal_address_columns,
)
from migration_assets.specs.enums import ADDRESS_TYPE
from migration_assets.specs.kinds import BOOL, TEXT, TIMESTAMP, Ref, legacy_hex
from migration_assets.specs.model import BusinessRule, Column, LoaderSpec, TableSpec


def owner(d: Mapping[str, Any]) -> str | None:
    try:
        return legacy_hex(d.get("user"))
    except Exception:
        return None  # an unmappable owner is quarantined by the transform


def find_demoted_primaries(docs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Primary addresses a more recently set primary of the same user outranks."""
    return {"demoted_primaries": demote_duplicates(
        docs,
        flagged=lambda d: d.get("isPrimary") is True,
        group=owner,
        rank=lambda d: (d.get("updatedAt") or d.get("createdAt"), str(d["_id"])),
        keep="last",
    )}


ADDRESSES = TableSpec(
    table="addresses",
    description="Users' saved addresses; at most one primary per user.",
    columns=(
        id_column("addresses"),
        legacy_column(),
        Column("user_id", Ref("users"), "user", required=True),
        Column("type", ADDRESS_TYPE, "type", required=True, default="shipping"),
        Column("is_primary", BOOL, compute=flag_unless_demoted("isPrimary", False, "demoted_primaries"),
               lineage=("isPrimary", "user", "updatedAt", "createdAt"),
               required=True, doc="isPrimary, except older primaries of a user with a more recent one"),
        Column("label", TEXT, "label"),
        *postal_address_columns(),
        Column("created_at", TIMESTAMP, "createdAt", required=True),
        Column("updated_at", TIMESTAMP, "updatedAt"),
    ),
    rules=(
        BusinessRule(
            "one_primary_address_per_user", "at most one primary address per user", "several_primary_addresses",
            """SELECT u.legacy_object_id,
                      'primary addresses ' || string_agg(a.legacy_object_id, ', ' ORDER BY a.legacy_object_id)
               FROM public.addresses a JOIN public.users u ON u.id = a.user_id
               WHERE a.is_primary GROUP BY u.legacy_object_id HAVING count(*) > 1 ORDER BY 1""",
            guard_index="addresses_one_primary_per_user_uq",
        ),
    ),
)

LOADER = LoaderSpec(
    name="addresses",
    collection="addresses",
    domain="config_ops",
    tables=(ADDRESSES,),
    prepare=find_demoted_primaries,
    flags=("ADDRESS_STORE",),
)
