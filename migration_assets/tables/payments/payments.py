"""payments (Mongo ``payments``) and the embedded oracle quote -> ``payments``, ``payment_quotes``.

Document shape::

    {_id, purchaseRequest?: ObjectId, sellerOffer?: ObjectId, payer: ObjectId(users),
     payee?: ObjectId(users), amount: Decimal128 | double, currency, status, provider,
     providerReference?, txHash?, confirmations?: int | double, paidAt?, releasedAt?,
     createdAt, updatedAt?,
     quote?: {baseCurrency, quoteCurrency, rate, baseAmount, quoteAmount, source,
              quotedAt, expiresAt?}}

Rules and awkward cases:

* Money is exact: Decimal128 loads as is; payments written before Decimal128 hold a double,
  loaded through its shortest repr (``25.5`` stays ``25.5``). A value that would need more
  than 18 decimals is quarantined (precision_loss), never rounded. ``amount > 0`` (0013).
* ``purchaseRequest``/``sellerOffer`` are absent on manual top-up payments; ``payee`` on
  payments created before an offer was chosen; ``confirmations`` on payments created before
  chain tracking (-> 0).
* At most one *pending* payment per purchase request (0005's partial unique index); a second
  one is refused by PostgreSQL and quarantined with the index name.
* ``quote`` (written when ORACLE_QUOTING_ENABLED) is one ``payment_quotes`` row keyed by
  ``payment_id``. The row has no legacy id of its own, so its ``id`` is uuid5 of
  ``payment_quotes`` + the payment's ``_id``: the same on every run.

Moves with ``REPO_PAYMENT`` (and ``ORACLE_QUOTING_ENABLED`` for the quote).
"""

from migration_assets.specs.columns import derived_id_column, id_column, legacy_column, parent_column
from migration_assets.specs.enums import CURRENCY, PAYMENT_STATUS
from migration_assets.specs.kinds import INT, MONEY, TEXT, TIMESTAMP, Ref
from migration_assets.specs.model import Column, LoaderSpec, TableSpec, embedded

PAYMENTS = TableSpec(
    table="payments",
    description="Escrow payments of purchase requests (and manual top-ups).",
    columns=(
        id_column("payments"),
        legacy_column(),
        Column("purchase_request_id", Ref("purchase_requests"), "purchaseRequest"),
        Column("seller_offer_id", Ref("seller_offers"), "sellerOffer"),
        Column("payer_id", Ref("users"), "payer", required=True),
        Column("payee_id", Ref("users"), "payee"),
        Column("amount", MONEY, "amount", required=True),
        Column("currency", CURRENCY, "currency", required=True),
        Column("status", PAYMENT_STATUS, "status", required=True, default="pending"),
        Column("provider", TEXT, "provider", required=True),
        Column("provider_reference", TEXT, "providerReference"),
        Column("tx_hash", TEXT, "txHash"),
        Column("confirmations", INT, "confirmations", required=True, default=0),
        Column("paid_at", TIMESTAMP, "paidAt"),
        Column("released_at", TIMESTAMP, "releasedAt"),
        Column("created_at", TIMESTAMP, "createdAt", required=True),
        Column("updated_at", TIMESTAMP, "updatedAt"),
    ),
)

PAYMENT_QUOTES = TableSpec(
    table="payment_quotes",
    description="The oracle quote of a payment (Mongo Payment.quote), zero or one per payment.",
    rows=embedded("quote"),
    key=("payment_id",),
    parent_column="payment_id",
    columns=(
        derived_id_column("payment_quotes"),
        parent_column("payment_id", "payments"),
        Column("base_currency", TEXT, "baseCurrency", required=True),
        Column("quote_currency", TEXT, "quoteCurrency", required=True),
        Column("rate", MONEY, "rate", required=True),
        Column("base_amount", MONEY, "baseAmount", required=True),
        Column("quote_amount", MONEY, "quoteAmount", required=True),
        Column("source", TEXT, "source", required=True),
        Column("quoted_at", TIMESTAMP, "quotedAt", required=True),
        Column("expires_at", TIMESTAMP, "expiresAt"),
    ),
)

LOADER = LoaderSpec(
    name="payments",
    collection="payments",
    domain="payments",
    tables=(PAYMENTS, PAYMENT_QUOTES),
    flags=("REPO_PAYMENT", "ORACLE_QUOTING_ENABLED"),
)
