"""purchase requests (Mongo ``purchaserequests``) -> ``purchase_requests`` and its child tables.

One document carries the whole aggregate; PostgreSQL stores it relationally:

==========================================  ==========================================
Mongo field                                 table
==========================================  ==========================================
the document                                purchase_requests
deliveryInfo (object)                       purchase_request_delivery_info
deliveryInfo.address (object)               purchase_request_delivery_address
sellerDeliveryInfo (object)                 purchase_request_seller_delivery_info
serviceInfo (object)                        purchase_request_service_info
specifications[] ({key, value})             purchase_request_specifications
preferredSellers[] (ObjectId -> users)      purchase_request_preferred_sellers
deliveryAttempts[] (subdocuments)           delivery_attempts
==========================================  ==========================================

``selectedOfferId`` points at a seller offer, and seller offers point back at their
request: the column is written by the ``purchase_requests_selected_offer`` remap once
``seller_offers`` has loaded, and that remap refuses an offer of another request.
"""

from migration_assets.specs.columns import id_column, legacy_column, parent_column, postal_address_columns
from migration_assets.specs.enums import CURRENCY, DELIVERY_ATTEMPT_STATUS, PURCHASE_REQUEST_STATUS
from migration_assets.specs.kinds import INT, MONEY, TEXT, TIMESTAMP, Ref
from migration_assets.specs.model import BelongsTo, Column, DeferredRemap, LoaderSpec, TableSpec, array, embedded

PR = "purchase_requests"

PURCHASE_REQUESTS = TableSpec(
    table=PR,
    description="Buyers' purchase requests (the root of the marketplace aggregate).",
    columns=(
        id_column(PR),
        legacy_column(),
        Column("buyer_id", Ref("users"), "buyer", required=True),
        Column("category_id", Ref("categories"), "category", required=True),
        Column("template_id", Ref("request_templates"), "template"),
        Column("title", TEXT, "title", required=True),
        Column("description", TEXT, "description"),
        Column("quantity", INT, "quantity", required=True, default=1),
        Column("budget_amount", MONEY, "budget.amount"),
        Column("budget_currency", CURRENCY, "budget.currency", required=True, default="USDT"),
        Column("status", PURCHASE_REQUEST_STATUS, "status", required=True, default="open"),
        Column("selected_offer_id", Ref("seller_offers"), "selectedOfferId", deferred=True),
        Column("deadline", TIMESTAMP, "deadline"),
        Column("created_at", TIMESTAMP, "createdAt", required=True),
        Column("updated_at", TIMESTAMP, "updatedAt"),
    ),
)

DELIVERY_INFO = TableSpec(
    table="purchase_request_delivery_info",
    description="How the buyer wants delivery (deliveryInfo).",
    rows=embedded("deliveryInfo"),
    key=("purchase_request_id",),
    parent_column="purchase_request_id",
    columns=(
        parent_column("purchase_request_id", PR),
        Column("method", TEXT, "method", required=True),
        Column("instructions", TEXT, "instructions"),
        Column("preferred_date", TIMESTAMP, "preferredDate"),
        Column("shipping_cost", MONEY, "shippingCost"),
    ),
)

DELIVERY_ADDRESS = TableSpec(
    table="purchase_request_delivery_address",
    description="Where to deliver (deliveryInfo.address).",
    rows=embedded("deliveryInfo.address"),
    key=("purchase_request_id",),
    parent_column="purchase_request_id",
    columns=(
        parent_column("purchase_request_id", PR),
        *postal_address_columns(),
    ),
)

SELLER_DELIVERY_INFO = TableSpec(
    table="purchase_request_seller_delivery_info",
    description="The seller's shipment (sellerDeliveryInfo).",
    rows=embedded("sellerDeliveryInfo"),
    key=("purchase_request_id",),
    parent_column="purchase_request_id",
    columns=(
        parent_column("purchase_request_id", PR),
        Column("carrier", TEXT, "carrier"),
        Column("tracking_number", TEXT, "trackingNumber"),
        Column("shipped_at", TIMESTAMP, "shippedAt"),
        Column("estimated_delivery_at", TIMESTAMP, "estimatedDeliveryAt"),
        Column("notes", TEXT, "notes"),
    ),
)

SERVICE_INFO = TableSpec(
    table="purchase_request_service_info",
    description="Service requests' details (serviceInfo).",
    rows=embedded("serviceInfo"),
    key=("purchase_request_id",),
    parent_column="purchase_request_id",
    columns=(
        parent_column("purchase_request_id", PR),
        Column("service_type", TEXT, "serviceType", required=True),
        Column("location", TEXT, "location"),
        Column("scheduled_at", TIMESTAMP, "scheduledAt"),
        Column("duration_minutes", INT, "durationMinutes"),
    ),
)

SPECIFICATIONS = TableSpec(
    table="purchase_request_specifications",
    description="Key/value specifications (specifications[]); one value per key (0010).",
    rows=array("specifications"),
    key=("purchase_request_id", "position"),
    unique_keys=(("purchase_request_id", "key"),),
    parent_column="purchase_request_id",
    columns=(
        parent_column("purchase_request_id", PR),
        Column("position", INT, "$index", required=True),
        Column("key", TEXT, "key", required=True),
        Column("value", TEXT, "value", required=True),
    ),
)

PREFERRED_SELLERS = TableSpec(
    table="purchase_request_preferred_sellers",
    description="Sellers the buyer invited (preferredSellers[], ObjectIds of users).",
    rows=array("preferredSellers"),
    key=("purchase_request_id", "seller_id"),
    parent_column="purchase_request_id",
    columns=(
        parent_column("purchase_request_id", PR),
        Column("seller_id", Ref("users"), "$element", required=True),
        Column("position", INT, "$index", required=True),
    ),
)

DELIVERY_ATTEMPTS = TableSpec(
    table="delivery_attempts",
    description="Courier delivery attempts (deliveryAttempts[] subdocuments).",
    rows=array("deliveryAttempts"),
    unique_keys=(("purchase_request_id", "attempt_number"),),
    parent_column="purchase_request_id",
    columns=(
        id_column("delivery_attempts"),
        legacy_column(),
        parent_column("purchase_request_id", PR),
        Column("attempt_number", INT, "attemptNumber", required=True),
        Column("status", DELIVERY_ATTEMPT_STATUS, "status", required=True),
        Column("carrier", TEXT, "carrier"),
        Column("attempted_at", TIMESTAMP, "attemptedAt", required=True),
        Column("notes", TEXT, "notes"),
    ),
)

SELECTED_OFFER = DeferredRemap(
    name="purchase_requests_selected_offer",
    table=PR,
    column="selected_offer_id",
    description="Sets purchase_requests.selected_offer_id once seller_offers exist; the offer "
    "must belong to the same request.",
    belongs=BelongsTo(via="purchase_request_id", rule="selected_offer_belongs_to_request",
                      reason="offer_of_another_request",
                      description="a purchase request's selected offer is one of its own offers"),
)

LOADER = LoaderSpec(
    name="purchase_requests",
    collection="purchaserequests",
    domain="marketplace",
    tables=(
        PURCHASE_REQUESTS,
        DELIVERY_INFO,
        DELIVERY_ADDRESS,
        SELLER_DELIVERY_INFO,
        SERVICE_INFO,
        SPECIFICATIONS,
        PREFERRED_SELLERS,
        DELIVERY_ATTEMPTS,
    ),
    remaps=(SELECTED_OFFER,),
    flags=("REPO_MARKETPLACE",),
    ignored={"__v": "Mongoose's version key (optimistic concurrency of the ODM), not data"},
    ranged=True,  # grows with the marketplace: loads in _id ranges, one step each (load/ranged.py)
)
