"""PostgreSQL enum types and their values, as created by ``sql/`` (a test compares them
with ``pg_enum``)."""

from migration_assets.specs.kinds import Enum

USER_ROLE = Enum(pg_type="user_role", values=("user", "seller", "admin", "moderator", "guard"))
CURRENCY = Enum(pg_type="offer_currency", values=("USDT", "USDC", "ETH", "BTC", "TRY"))
PURCHASE_REQUEST_STATUS = Enum(
    pg_type="purchase_request_status",
    values=("open", "offer_accepted", "paid", "shipped", "delivered", "completed", "cancelled", "disputed"),
)
SELLER_OFFER_STATUS = Enum(pg_type="seller_offer_status", values=("pending", "accepted", "rejected", "withdrawn"))
PAYMENT_STATUS = Enum(
    pg_type="payment_status",
    values=("pending", "confirming", "held", "released", "refunded", "failed", "cancelled"),
)
LEDGER_DIRECTION = Enum(pg_type="ledger_direction", values=("debit", "credit"))
LEDGER_ENTRY_TYPE = Enum(
    pg_type="ledger_entry_type",
    values=("deposit", "escrow_hold", "escrow_release", "refund", "fee", "withdrawal", "adjustment"),
)
POINT_TRANSACTION_TYPE = Enum(pg_type="point_transaction_type", values=("earn", "spend", "referral", "bonus", "adjustment"))
DELIVERY_ATTEMPT_STATUS = Enum(
    pg_type="delivery_attempt_status", values=("scheduled", "in_transit", "delivered", "failed", "returned")
)
DERIVED_DESTINATION_STATUS = Enum(pg_type="derived_destination_status", values=("active", "swept", "retired"))
SWEEP_STATUS = Enum(pg_type="sweep_status", values=("pending", "confirmed", "failed"))
BLOG_POST_STATUS = Enum(pg_type="blog_post_status", values=("draft", "published", "archived"))
CHAT_TYPE = Enum(pg_type="chat_type", values=("request", "support", "direct"))
CHAT_PARTICIPANT_ROLE = Enum(pg_type="chat_participant_role", values=("buyer", "seller", "admin", "support"))
DISPUTE_STATUS = Enum(
    pg_type="dispute_status", values=("open", "under_review", "resolved_buyer", "resolved_seller", "closed")
)
ADDRESS_TYPE = Enum(pg_type="address_type", values=("shipping", "billing", "pickup"))
RELEASE_HOLD_STATUS = Enum(pg_type="release_hold_status", values=("held", "released", "cancelled"))
