"""derived deposit destinations (Mongo ``deriveddestinations``) -> ``derived_destinations``.

Document shape::

    {_id, payment?: ObjectId(payments), user?: ObjectId(users), chain, address,
     derivationPath?, derivationIndex: int | double, status?, createdAt, updatedAt?}

One HD-derived deposit address per payment intent (``address`` is unique). Addresses
allocated ahead of time have neither ``payment`` nor ``user``; documents predating the
status field are ``active``. ``derivationIndex`` is a double in documents the first
allocator wrote (``17.0``); an integral double loads, a fractional one is quarantined.
Moves with ``REPO_DERIVED_DESTINATION``.
"""

from migration_assets.specs.columns import id_column, legacy_column
from migration_assets.specs.enums import DERIVED_DESTINATION_STATUS
from migration_assets.specs.kinds import INT, TEXT, TIMESTAMP, Ref
from migration_assets.specs.model import Column, LoaderSpec, TableSpec

DERIVED_DESTINATIONS = TableSpec(
    table="derived_destinations",
    description="HD-derived deposit addresses allocated to payments.",
    columns=(
        id_column("derived_destinations"),
        legacy_column(),
        Column("payment_id", Ref("payments"), "payment"),
        Column("user_id", Ref("users"), "user"),
        Column("chain", TEXT, "chain", required=True),
        Column("address", TEXT, "address", required=True),
        Column("derivation_path", TEXT, "derivationPath"),
        Column("derivation_index", INT, "derivationIndex", required=True),
        Column("status", DERIVED_DESTINATION_STATUS, "status", required=True, default="active"),
        Column("created_at", TIMESTAMP, "createdAt", required=True),
        Column("updated_at", TIMESTAMP, "updatedAt"),
    ),
)

LOADER = LoaderSpec(
    name="derived_destinations",
    collection="deriveddestinations",
    domain="payments",
    tables=(DERIVED_DESTINATIONS,),
    flags=("REPO_DERIVED_DESTINATION",),
)
