"""Telegram links (Mongo ``telegramlinks``) -> ``telegram_links``.

Document shape::

    {_id, user: ObjectId(users), telegramUserId: int | Int64 | double,
     telegramUsername?: str, linkedAt: Date}

One link per user and per Telegram account (both unique in PostgreSQL). Telegram user ids
exceed 32 bits: new documents hold an Int64, documents written by the first bot version a
double (``5123456789.0``); both load exactly into ``bigint``, a fractional double is
quarantined (not_integral). ``telegramUsername`` is absent when the account has none.
Moves with ``AUTH_STORE``.
"""

from migration_assets.specs.columns import id_column, legacy_column
from migration_assets.specs.kinds import BIGINT, TEXT, TIMESTAMP, Ref
from migration_assets.specs.model import Column, LoaderSpec, TableSpec

TELEGRAM_LINKS = TableSpec(
    table="telegram_links",
    description="A user's linked Telegram account (one per user).",
    columns=(
        id_column("telegram_links"),
        legacy_column(),
        Column("user_id", Ref("users"), "user", required=True),
        Column("telegram_user_id", BIGINT, "telegramUserId", required=True),
        Column("telegram_username", TEXT, "telegramUsername"),
        Column("linked_at", TIMESTAMP, "linkedAt", required=True),
    ),
)

LOADER = LoaderSpec(
    name="telegram_links",
    collection="telegramlinks",
    domain="auth",
    tables=(TELEGRAM_LINKS,),
    flags=("AUTH_STORE",),
)
