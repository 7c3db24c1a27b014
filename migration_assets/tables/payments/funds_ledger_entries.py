"""funds ledger (Mongo ``fundsledgerentries``) -> ``funds_ledger_entries`` (append-only).

Document shape::

    {_id, payment?: ObjectId(payments), user?: ObjectId(users), account, currency,
     direction: "debit" | "credit", amount: Decimal128, entryType, description?, createdAt}

The ledger is immutable in PostgreSQL (0004a/0013/0015 triggers refuse UPDATE, DELETE and
TRUNCATE), so this loader is ``append_only``: a re-run inserts entries that are absent and
never rewrites one. ``description`` is absent on entries written before it existed.

Double-entry model (the generator follows it; ledger invariant checks rely on it):

* Accounts: ``buyer_wallet`` (``user_id`` = the payer), ``escrow`` (``user_id`` NULL),
  ``seller_wallet`` (``user_id`` = the payee), ``platform_fees`` (``user_id`` NULL),
  ``external`` (``user_id`` NULL, money entering from outside).
* Deposit (no payment): debit ``external`` X, credit ``buyer_wallet`` X, both
  ``entry_type = deposit``, same currency, same ``created_at`` and same ``description``
  (``deposit <reference>``), which pairs the two legs.
* Every payment whose status is ``held``, ``released`` or ``refunded`` has an
  ``escrow_hold``: debit ``buyer_wallet`` A, credit ``escrow`` A, where A is the payment's
  amount and the currency the payment's.
* ``released`` adds ``escrow_release``: debit ``escrow`` A, credit ``seller_wallet`` A - F,
  and a ``fee`` entry: credit ``platform_fees`` F, with 0 < F < A.
* ``refunded`` adds ``refund``: debit ``escrow`` A, credit ``buyer_wallet`` A.
* Payments with any other status have no entries.

Hence, per payment, sum(debits) = sum(credits); the sum of ``escrow_hold`` credits to
``escrow`` equals ``payments.amount``; per currency the whole ledger balances; every amount
is a Decimal128 > 0 (0013's CHECK refuses anything else, into quarantine). Each hold is
preceded (in ``created_at`` order) by a deposit of the payer in that currency covering it,
so no ``buyer_wallet`` balance goes negative, and no escrow balance does either (release or
refund come after their hold).

Moves with ``REPO_PAYMENT`` (``dual`` enables the Drizzle ledger seam).
"""

from migration_assets.specs.columns import id_column, legacy_column
from migration_assets.specs.enums import CURRENCY, LEDGER_DIRECTION, LEDGER_ENTRY_TYPE
from migration_assets.specs.kinds import MONEY, TEXT, TIMESTAMP, Ref
from migration_assets.specs.model import Column, LedgerAccounts, LedgerSpec, LoaderSpec, TableSpec

ACCOUNTS = LedgerAccounts(payer_wallet="buyer_wallet", escrow="escrow", payee_wallet="seller_wallet",
                          fees="platform_fees", external="external")

FUNDS_LEDGER_ENTRIES = TableSpec(
    table="funds_ledger_entries",
    description="Append-only double-entry funds ledger (escrow holds, releases, fees, refunds, deposits).",
    columns=(
        id_column("funds_ledger_entries"),
        legacy_column(),
        Column("payment_id", Ref("payments"), "payment"),
        Column("user_id", Ref("users"), "user"),
        Column("account", TEXT, "account", required=True),
        Column("currency", CURRENCY, "currency", required=True),
        Column("direction", LEDGER_DIRECTION, "direction", required=True),
        Column("amount", MONEY, "amount", required=True),
        Column("entry_type", LEDGER_ENTRY_TYPE, "entryType", required=True),
        Column("description", TEXT, "description"),
        Column("created_at", TIMESTAMP, "createdAt", required=True),
    ),
)

LOADER = LoaderSpec(
    name="funds_ledger_entries",
    collection="fundsledgerentries",
    domain="payments",
    tables=(FUNDS_LEDGER_ENTRIES,),
    append_only=True,
    flags=("REPO_PAYMENT",),
    ledger=LedgerSpec(accounts=ACCOUNTS, payments_table="payments",
                      money_columns=(("payments", "amount"), ("funds_ledger_entries", "amount"))),
)
