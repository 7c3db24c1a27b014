-- 0003: full rebuild of the core domain tables: users and auth, marketplace, payments,
-- funds ledger, derived destinations, points and Trezor. Cross-aggregate foreign keys
-- arrive later (0004b seller offers, 0005 payments, 0014 everything else).
CREATE TYPE purchase_request_status AS ENUM
    ('open', 'offer_accepted', 'paid', 'shipped', 'delivered', 'completed', 'cancelled', 'disputed');
CREATE TYPE seller_offer_status AS ENUM ('pending', 'accepted', 'rejected', 'withdrawn');
CREATE TYPE payment_status AS ENUM
    ('pending', 'confirming', 'held', 'released', 'refunded', 'failed', 'cancelled');
CREATE TYPE ledger_direction AS ENUM ('debit', 'credit');
CREATE TYPE ledger_entry_type AS ENUM
    ('deposit', 'escrow_hold', 'escrow_release', 'refund', 'fee', 'withdrawal', 'adjustment');
CREATE TYPE point_transaction_type AS ENUM ('earn', 'spend', 'referral', 'bonus', 'adjustment');
CREATE TYPE delivery_attempt_status AS ENUM ('scheduled', 'in_transit', 'delivered', 'failed', 'returned');
CREATE TYPE derived_destination_status AS ENUM ('active', 'swept', 'retired');
CREATE TYPE sweep_status AS ENUM ('pending', 'confirmed', 'failed');

-- auth ---------------------------------------------------------------------------
CREATE TABLE users (
    id                uuid PRIMARY KEY,
    legacy_object_id  text NOT NULL,
    email             text NOT NULL UNIQUE,
    username          text,
    display_name      text,
    password_hash     text,
    role              user_role NOT NULL DEFAULT 'user',
    points            integer NOT NULL DEFAULT 0,
    level             integer NOT NULL DEFAULT 1,
    is_verified       boolean NOT NULL DEFAULT false,
    wallet_address    text,
    referral_code     text UNIQUE,
    last_login_at     timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz
);

CREATE TABLE user_passkeys (
    id                uuid PRIMARY KEY,
    legacy_object_id  text NOT NULL,
    user_id           uuid NOT NULL REFERENCES users (id),
    credential_id     text NOT NULL UNIQUE,
    public_key        text NOT NULL,
    sign_count        bigint NOT NULL DEFAULT 0,
    transports        text[],
    created_at        timestamptz NOT NULL DEFAULT now(),
    last_used_at      timestamptz
);
CREATE INDEX user_passkeys_user_id_idx ON user_passkeys (user_id);

CREATE TABLE user_refresh_tokens (
    id                uuid PRIMARY KEY,
    legacy_object_id  text NOT NULL,
    user_id           uuid NOT NULL,
    token_hash        text NOT NULL UNIQUE,
    user_agent        text,
    expires_at        timestamptz NOT NULL,
    revoked_at        timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE telegram_links (
    id                 uuid PRIMARY KEY,
    legacy_object_id   text NOT NULL,
    user_id            uuid NOT NULL UNIQUE,
    telegram_user_id   bigint NOT NULL UNIQUE,
    telegram_username  text,
    linked_at          timestamptz NOT NULL
);

CREATE TABLE telegram_sessions (
    id                 uuid PRIMARY KEY,
    legacy_object_id   text NOT NULL,
    telegram_user_id   bigint NOT NULL,
    user_id            uuid,
    state              text NOT NULL,
    data               jsonb,
    expires_at         timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now()
);

-- marketplace --------------------------------------------------------------------
CREATE TABLE purchase_requests (
    id                 uuid PRIMARY KEY,
    legacy_object_id   text NOT NULL,
    buyer_id           uuid NOT NULL,
    category_id        uuid NOT NULL,
    title              text NOT NULL,
    description        text,
    quantity           integer NOT NULL DEFAULT 1,
    budget_amount      numeric(38, 18),
    budget_currency    offer_currency NOT NULL,
    status             purchase_request_status NOT NULL DEFAULT 'open',
    selected_offer_id  uuid,
    deadline           timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz
);
CREATE INDEX purchase_requests_buyer_id_idx ON purchase_requests (buyer_id);

CREATE TABLE purchase_request_delivery_info (
    purchase_request_id  uuid PRIMARY KEY REFERENCES purchase_requests (id),
    method               text NOT NULL,
    instructions         text,
    preferred_date       timestamptz,
    shipping_cost        numeric(38, 18)
);

CREATE TABLE purchase_request_delivery_address (
    purchase_request_id  uuid PRIMARY KEY REFERENCES purchase_requests (id),
    recipient_name       text,
    line1                text NOT NULL,
    line2                text,
    city                 text NOT NULL,
    region               text,
    postal_code          text,
    country_code         text NOT NULL,
    phone                text
);

CREATE TABLE purchase_request_seller_delivery_info (
    purchase_request_id    uuid PRIMARY KEY REFERENCES purchase_requests (id),
    carrier                text,
    tracking_number        text,
    shipped_at             timestamptz,
    estimated_delivery_at  timestamptz,
    notes                  text
);

CREATE TABLE purchase_request_service_info (
    purchase_request_id  uuid PRIMARY KEY REFERENCES purchase_requests (id),
    service_type         text NOT NULL,
    location             text,
    scheduled_at         timestamptz,
    duration_minutes     integer
);

CREATE TABLE purchase_request_specifications (
    purchase_request_id  uuid NOT NULL REFERENCES purchase_requests (id),
    position             integer NOT NULL,
    key                  text NOT NULL,
    value                text NOT NULL,
    PRIMARY KEY (purchase_request_id, position)
);

CREATE TABLE purchase_request_preferred_sellers (
    purchase_request_id  uuid NOT NULL REFERENCES purchase_requests (id),
    seller_id            uuid NOT NULL,
    position             integer NOT NULL,
    PRIMARY KEY (purchase_request_id, seller_id)
);

CREATE TABLE delivery_attempts (
    id                   uuid PRIMARY KEY,
    legacy_object_id     text NOT NULL,
    purchase_request_id  uuid NOT NULL REFERENCES purchase_requests (id),
    attempt_number       integer NOT NULL,
    status               delivery_attempt_status NOT NULL,
    carrier              text,
    attempted_at         timestamptz NOT NULL,
    notes                text,
    UNIQUE (purchase_request_id, attempt_number)
);

CREATE TABLE seller_offers (
    id                   uuid PRIMARY KEY,
    legacy_object_id     text NOT NULL,
    purchase_request_id  uuid NOT NULL,
    seller_id            uuid NOT NULL,
    price                numeric(38, 18) NOT NULL,
    currency             offer_currency NOT NULL,
    delivery_days        integer,
    message              text,
    status               seller_offer_status NOT NULL DEFAULT 'pending',
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz
);
CREATE INDEX seller_offers_purchase_request_id_idx ON seller_offers (purchase_request_id);

-- payments -----------------------------------------------------------------------
CREATE TABLE payments (
    id                   uuid PRIMARY KEY,
    legacy_object_id     text NOT NULL,
    purchase_request_id  uuid,
    seller_offer_id      uuid,
    payer_id             uuid NOT NULL,
    payee_id             uuid,
    amount               numeric(38, 18) NOT NULL,
    currency             offer_currency NOT NULL,
    status               payment_status NOT NULL DEFAULT 'pending',
    provider             text NOT NULL,
    provider_reference   text,
    tx_hash              text,
    confirmations        integer NOT NULL DEFAULT 0,
    paid_at              timestamptz,
    released_at          timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz
);
-- First cut of the pending-payment index; 0005 fixes it to be partial.
CREATE INDEX payments_pending_idx ON payments (purchase_request_id, status);

CREATE TABLE funds_ledger_entries (
    id                uuid PRIMARY KEY,
    legacy_object_id  text NOT NULL,
    payment_id        uuid,
    user_id           uuid,
    account           text NOT NULL,
    currency          offer_currency NOT NULL,
    direction         ledger_direction NOT NULL,
    amount            numeric(38, 18) NOT NULL,
    entry_type        ledger_entry_type NOT NULL,
    description       text,
    created_at        timestamptz NOT NULL
);
CREATE INDEX funds_ledger_entries_payment_id_idx ON funds_ledger_entries (payment_id);
CREATE INDEX funds_ledger_entries_account_idx ON funds_ledger_entries (account, currency);

CREATE TABLE derived_destinations (
    id                uuid PRIMARY KEY,
    legacy_object_id  text NOT NULL,
    payment_id        uuid,
    user_id           uuid,
    chain             text NOT NULL,
    address           text NOT NULL UNIQUE,
    derivation_path   text,
    derivation_index  integer NOT NULL,
    status            derived_destination_status NOT NULL DEFAULT 'active',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz
);

CREATE TABLE derived_destination_sweeps (
    id                uuid PRIMARY KEY,
    legacy_object_id  text NOT NULL,
    destination_id    uuid NOT NULL REFERENCES derived_destinations (id),
    amount            numeric(38, 18) NOT NULL,
    currency          offer_currency NOT NULL,
    tx_hash           text,
    status            sweep_status NOT NULL DEFAULT 'pending',
    swept_at          timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now()
);

-- points / wallet ----------------------------------------------------------------
CREATE TABLE point_transactions (
    id                uuid PRIMARY KEY,
    legacy_object_id  text NOT NULL,
    user_id           uuid NOT NULL,
    amount            integer NOT NULL,
    type              point_transaction_type NOT NULL,
    reason            text,
    reference_id      text,
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE trezor_accounts (
    id                uuid PRIMARY KEY,
    legacy_object_id  text NOT NULL,
    user_id           uuid NOT NULL,
    label             text,
    coin              text NOT NULL,
    xpub              text NOT NULL UNIQUE,
    account_index     integer NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz
);

CREATE TABLE trezor_derived_addresses (
    id                 uuid PRIMARY KEY,
    legacy_object_id   text NOT NULL,
    trezor_account_id  uuid NOT NULL REFERENCES trezor_accounts (id),
    address            text NOT NULL UNIQUE,
    derivation_path    text NOT NULL,
    address_index      integer NOT NULL,
    used               boolean NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now()
);

-- config / ops -------------------------------------------------------------------
CREATE TABLE config_settings (
    id                uuid PRIMARY KEY,
    legacy_object_id  text NOT NULL,
    key               text NOT NULL UNIQUE,
    value             jsonb NOT NULL,
    description       text,
    updated_by        uuid,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz
);

CREATE TABLE config_setting_history (
    id                uuid PRIMARY KEY,
    legacy_object_id  text NOT NULL,
    setting_id        uuid NOT NULL REFERENCES config_settings (id),
    key               text NOT NULL,
    old_value         jsonb,
    new_value         jsonb NOT NULL,
    changed_by        uuid,
    changed_at        timestamptz NOT NULL
);

CREATE TABLE shop_settings (
    id                uuid PRIMARY KEY,
    legacy_object_id  text NOT NULL,
    seller_id         uuid NOT NULL UNIQUE,
    shop_name         text NOT NULL,
    description       text,
    reviews_enabled   boolean NOT NULL DEFAULT true,
    payment_rails     text[] NOT NULL DEFAULT '{}',
    is_active         boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz
);

CREATE TABLE reviews (
    id                   uuid PRIMARY KEY,
    legacy_object_id     text NOT NULL,
    reviewer_id          uuid NOT NULL,
    seller_id            uuid NOT NULL,
    purchase_request_id  uuid,
    rating               smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment              text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz
);

-- content / social ---------------------------------------------------------------
CREATE TYPE blog_post_status AS ENUM ('draft', 'published', 'archived');
CREATE TABLE blog_posts (
    id                uuid PRIMARY KEY,
    legacy_object_id  text NOT NULL,
    author_id         uuid NOT NULL,
    title             text NOT NULL,
    slug              text NOT NULL UNIQUE,
    excerpt           text,
    body              text NOT NULL,
    tags              text[] NOT NULL DEFAULT '{}',
    status            blog_post_status NOT NULL DEFAULT 'draft',
    published_at      timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz
);

CREATE TABLE notifications (
    id                uuid PRIMARY KEY,
    legacy_object_id  text NOT NULL,
    user_id           uuid NOT NULL,
    type              text NOT NULL,
    title             text NOT NULL,
    body              text,
    data              jsonb,
    read_at           timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_user_id_idx ON notifications (user_id, created_at);
