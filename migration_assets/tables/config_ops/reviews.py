"""marketplace reviews (Mongo ``reviews``) -> ``reviews``.

Document shape::

    {_id, reviewer: ObjectId(users), seller: ObjectId(users),
     purchaseRequest?: ObjectId(purchaserequests), rating: int | double, comment?,
     createdAt, updatedAt?}

``rating`` is 1..5 (a CHECK): the first review widget stored it as a double (``4.0``),
which loads; a fractional rating is quarantined (not_integral) and one outside 1..5 is
refused by the CHECK into quarantine. Reviews from before purchase-linked reviews have no
``purchaseRequest``. Moves with ``REVIEW_STORE``.
"""

from migration_assets.specs.columns import id_column, legacy_column
from migration_assets.specs.kinds import SMALLINT, TEXT, TIMESTAMP, Ref
from migration_assets.specs.model import Column, LoaderSpec, TableSpec

REVIEWS = TableSpec(
    table="reviews",
    description="Buyers' reviews of sellers.",
    columns=(
        id_column("reviews"),
        legacy_column(),
        Column("reviewer_id", Ref("users"), "reviewer", required=True),
        Column("seller_id", Ref("users"), "seller", required=True),
        Column("purchase_request_id", Ref("purchase_requests"), "purchaseRequest"),
        Column("rating", SMALLINT, "rating", required=True),
        Column("comment", TEXT, "comment"),
        Column("created_at", TIMESTAMP, "createdAt", required=True),
        Column("updated_at", TIMESTAMP, "updatedAt"),
    ),
)

LOADER = LoaderSpec(
    name="reviews",
    collection="reviews",
    domain="config_ops",
    tables=(REVIEWS,),
    flags=("REVIEW_STORE",),
)
