"""users (Mongo ``users``) and its embedded WebAuthn passkeys -> ``users``, ``user_passkeys``.

Older user documents predate ``role``, ``points``, ``level`` and ``isVerified``; they get
the application defaults. Passkeys are Mongoose subdocuments with their own ``_id``.
"""

from migration_assets.specs.columns import id_column, legacy_column, parent_column
from migration_assets.specs.enums import USER_ROLE
from migration_assets.specs.kinds import BIGINT, BOOL, INT, TEXT, TEXT_ARRAY, TIMESTAMP
from migration_assets.specs.model import Column, LoaderSpec, TableSpec, array

USERS = TableSpec(
    table="users",
    description="Marketplace accounts (buyers, sellers, staff).",
    columns=(
        id_column("users"),
        legacy_column(),
        Column("email", TEXT, "email", required=True),
        Column("username", TEXT, "username"),
        Column("display_name", TEXT, "displayName"),
        Column("password_hash", TEXT, "passwordHash"),
        Column("role", USER_ROLE, "role", required=True, default="user"),
        Column("points", INT, "points", required=True, default=0),
        Column("level", INT, "level", required=True, default=1),
        Column("is_verified", BOOL, "isVerified", required=True, default=False),
        Column("wallet_address", TEXT, "walletAddress"),
        Column("referral_code", TEXT, "referralCode"),
        Column("last_login_at", TIMESTAMP, "lastLoginAt"),
        Column("created_at", TIMESTAMP, "createdAt", required=True),
        Column("updated_at", TIMESTAMP, "updatedAt"),
    ),
)

USER_PASSKEYS = TableSpec(
    table="user_passkeys",
    description="WebAuthn credentials, embedded in the user document as ``passkeys[]``.",
    rows=array("passkeys"),
    parent_column="user_id",
    columns=(
        id_column("user_passkeys"),
        legacy_column(),
        parent_column("user_id", "users"),
        Column("credential_id", TEXT, "credentialId", required=True),
        Column("public_key", TEXT, "publicKey", required=True),
        Column("sign_count", BIGINT, "signCount", required=True, default=0),
        Column("transports", TEXT_ARRAY, "transports"),
        Column("created_at", TIMESTAMP, "createdAt", required=True),
        Column("last_used_at", TIMESTAMP, "lastUsedAt"),
    ),
)

LOADER = LoaderSpec(
    name="users",
    collection="users",
    domain="auth",
    tables=(USERS, USER_PASSKEYS),
    flags=("AUTH_STORE", "REPO_USER"),
    ignored={"__v": "Mongoose's version key (optimistic concurrency of the ODM), not data"},
    ranged=True,  # grows with the marketplace: loads in _id ranges, one step each (load/ranged.py)
)
