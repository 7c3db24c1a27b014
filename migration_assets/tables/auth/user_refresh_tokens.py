"""refresh tokens (Mongo ``refreshtokens``) -> ``user_refresh_tokens``.

Document shape::

    {_id, user: ObjectId(users), tokenHash: "sha256 hex", userAgent?: str,
     expiresAt: Date, revokedAt?: Date, createdAt: Date}

Only the hash of a token is ever stored (``token_hash`` is unique). ``userAgent`` and
``revokedAt`` are absent on tokens issued before the session list existed / never revoked.
A token whose user is not in PostgreSQL is quarantined (missing_reference), never loaded
with a dangling ``user_id``. Moves with ``AUTH_STORE``.
"""

from migration_assets.specs.columns import id_column, legacy_column
from migration_assets.specs.kinds import TEXT, TIMESTAMP, Ref
from migration_assets.specs.model import Column, LoaderSpec, TableSpec

USER_REFRESH_TOKENS = TableSpec(
    table="user_refresh_tokens",
    description="Hashed refresh tokens of user sessions.",
    columns=(
        id_column("user_refresh_tokens"),
        legacy_column(),
        Column("user_id", Ref("users"), "user", required=True),
        Column("token_hash", TEXT, "tokenHash", required=True),
        Column("user_agent", TEXT, "userAgent"),
        Column("expires_at", TIMESTAMP, "expiresAt", required=True),
        Column("revoked_at", TIMESTAMP, "revokedAt"),
        Column("created_at", TIMESTAMP, "createdAt", required=True),
    ),
)

LOADER = LoaderSpec(
    name="user_refresh_tokens",
    collection="refreshtokens",
    domain="auth",
    tables=(USER_REFRESH_TOKENS,),
    flags=("AUTH_STORE", "REPO_USER"),
)
