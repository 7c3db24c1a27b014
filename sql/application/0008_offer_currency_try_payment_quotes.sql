-- 0008: TRY joins offer_currency; payment_quotes holds the oracle quote of a payment
-- (embedded as Payment.quote in Mongo).
ALTER TYPE offer_currency ADD VALUE IF NOT EXISTS 'TRY';

CREATE TABLE payment_quotes (
    id              uuid PRIMARY KEY,
    payment_id      uuid NOT NULL UNIQUE REFERENCES payments (id),
    base_currency   text NOT NULL,
    quote_currency  text NOT NULL,
    rate            numeric(38, 18) NOT NULL,
    base_amount     numeric(38, 18) NOT NULL,
    quote_amount    numeric(38, 18) NOT NULL,
    source          text NOT NULL,
    quoted_at       timestamptz NOT NULL,
    expires_at      timestamptz
);
