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

from migration_assets.enums import ADDRESS_TYPE
from migration_assets.kinds import BOOL, TEXT, TIMESTAMP, Ref, legacy_hex
from migration_assets.spec import Column, LoaderSpec, TableSpec, id_column, legacy_column, postal_address_columns


def find_demoted_primaries(docs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Legacy ids of primary addresses a more recently set primary of the same user outranks."""
    winners: dict[str, tuple] = {}
    claimed: list[tuple[str, tuple, str]] = []
    for d in docs:
        if d.get("isPrimary") is not True:
            continue
        try:
            user = legacy_hex(d.get("user"))
        except Exception:
            continue
        rank = (d.get("updatedAt") or d.get("createdAt"), str(d["_id"]))
        claimed.append((user, rank, str(d["_id"])))
        if user not in winners or rank > winners[user]:
            winners[user] = rank
    demoted = {oid: user for user, rank, oid in claimed if rank != winners[user]}
    return {"demoted_primaries": demoted}


def is_primary(source: Mapping[str, Any], doc: Mapping[str, Any], ctx: Mapping[str, Any]) -> Any:
    value = doc.get("isPrimary", False)
    if value is True and str(doc["_id"]) in ctx.get("demoted_primaries", {}):
        return False
    return value


ADDRESSES = TableSpec(
    table="addresses",
    description="Users' saved addresses; at most one primary per user.",
    columns=(
        id_column("addresses"),
        legacy_column(),
        Column("user_id", Ref("users"), "user", required=True),
        Column("type", ADDRESS_TYPE, "type", required=True, default="shipping"),
        Column("is_primary", BOOL, compute=is_primary, lineage=("isPrimary", "user", "updatedAt", "createdAt"),
               required=True, doc="isPrimary, except older primaries of a user with a more recent one"),
        Column("label", TEXT, "label"),
        *postal_address_columns(),
        Column("created_at", TIMESTAMP, "createdAt", required=True),
        Column("updated_at", TIMESTAMP, "updatedAt"),
    ),
)

LOADER = LoaderSpec(
    name="addresses",
    collection="addresses",
    domain="config_ops",
    tables=(ADDRESSES,),
    prepare=find_demoted_primaries,
    prepare_fields=("user", "isPrimary", "updatedAt", "createdAt"),
    flags=("ADDRESS_STORE",),
)
