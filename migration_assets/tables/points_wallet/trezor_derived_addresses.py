"""Trezor-derived addresses (Mongo ``trezorderivedaddresses``) -> ``trezor_derived_addresses``.

Document shape::

    {_id, trezorAccount: ObjectId(trezoraccounts), address, derivationPath,
     addressIndex: int | double, used?: bool, createdAt}

Receive addresses derived from a registered xpub (``address`` is unique). ``used`` is
absent until the address first receives funds (-> false); ``addressIndex`` is an integral
double in older documents. An address of an account that is not in PostgreSQL is
quarantined. Moves with ``REPO_TREZOR``.
"""

from migration_assets.specs.columns import id_column, legacy_column
from migration_assets.specs.kinds import BOOL, INT, TEXT, TIMESTAMP, Ref
from migration_assets.specs.model import Column, LoaderSpec, TableSpec

TREZOR_DERIVED_ADDRESSES = TableSpec(
    table="trezor_derived_addresses",
    description="Receive addresses derived from Trezor accounts.",
    columns=(
        id_column("trezor_derived_addresses"),
        legacy_column(),
        Column("trezor_account_id", Ref("trezor_accounts"), "trezorAccount", required=True),
        Column("address", TEXT, "address", required=True),
        Column("derivation_path", TEXT, "derivationPath", required=True),
        Column("address_index", INT, "addressIndex", required=True),
        Column("used", BOOL, "used", required=True, default=False),
        Column("created_at", TIMESTAMP, "createdAt", required=True),
    ),
)

LOADER = LoaderSpec(
    name="trezor_derived_addresses",
    collection="trezorderivedaddresses",
    domain="points_wallet",
    tables=(TREZOR_DERIVED_ADDRESSES,),
    flags=("REPO_TREZOR",),
)
