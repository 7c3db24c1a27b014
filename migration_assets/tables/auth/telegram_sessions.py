"""Telegram bot sessions (Mongo ``telegramsessions``) -> ``telegram_sessions``.

Document shape::

    {_id, telegramUserId: int | Int64 | double, user?: ObjectId(users), state: str,
     data?: <any object>, expiresAt?: Date, createdAt: Date}

``data`` is the bot's free-form conversation state (drafts, language, step counters, ids);
it stays a JSON document in ``jsonb`` on purpose: nothing queries inside it. ObjectIds in
it become their hex string, dates ISO-8601 text, Decimal128 exact JSON numbers. ``user`` is
absent while the chat is not yet linked to an account. Moves with ``AUTH_STORE``.
"""

from migration_assets.specs.columns import id_column, legacy_column
from migration_assets.specs.kinds import BIGINT, JSON, TEXT, TIMESTAMP, Ref
from migration_assets.specs.model import Column, LoaderSpec, TableSpec

TELEGRAM_SESSIONS = TableSpec(
    table="telegram_sessions",
    description="Telegram bot conversation sessions.",
    columns=(
        id_column("telegram_sessions"),
        legacy_column(),
        Column("telegram_user_id", BIGINT, "telegramUserId", required=True),
        Column("user_id", Ref("users"), "user"),
        Column("state", TEXT, "state", required=True),
        Column("data", JSON, "data"),
        Column("expires_at", TIMESTAMP, "expiresAt"),
        Column("created_at", TIMESTAMP, "createdAt", required=True),
    ),
)

LOADER = LoaderSpec(
    name="telegram_sessions",
    collection="telegramsessions",
    domain="auth",
    tables=(TELEGRAM_SESSIONS,),
    flags=("AUTH_STORE",),
)
