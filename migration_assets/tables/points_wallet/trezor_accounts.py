"""Trezor accounts (Mongo ``trezoraccounts``) -> ``trezor_accounts``.

Document shape::

    {_id, user: ObjectId(users), label?, coin, xpub, accountIndex?: int, createdAt,
     updatedAt?}

A hardware-wallet account a seller registered (``xpub`` is unique). ``accountIndex`` is
absent on accounts registered before multi-account support (-> 0). Moves with
``REPO_TREZOR``.
"""

from migration_assets.specs.columns import id_column, legacy_column
from migration_assets.specs.kinds import INT, TEXT, TIMESTAMP, Ref
from migration_assets.specs.model import Column, LoaderSpec, TableSpec

TREZOR_ACCOUNTS = TableSpec(
    table="trezor_accounts",
    description="Registered Trezor hardware-wallet accounts (xpubs).",
    columns=(
        id_column("trezor_accounts"),
        legacy_column(),
        Column("user_id", Ref("users"), "user", required=True),
        Column("label", TEXT, "label"),
        Column("coin", TEXT, "coin", required=True),
        Column("xpub", TEXT, "xpub", required=True),
        Column("account_index", INT, "accountIndex", required=True, default=0),
        Column("created_at", TIMESTAMP, "createdAt", required=True),
        Column("updated_at", TIMESTAMP, "updatedAt"),
    ),
)

LOADER = LoaderSpec(
    name="trezor_accounts",
    collection="trezoraccounts",
    domain="points_wallet",
    tables=(TREZOR_ACCOUNTS,),
    flags=("REPO_TREZOR",),
)
