-- 0019 (this platform): tables the backend bootstraps outside its Drizzle folder:
-- release holds (DrizzleReleaseHoldRepo, bridging payments and purchase requests) and
-- level configuration (the LEVEL_CONFIG_STORE facade).
CREATE TYPE release_hold_status AS ENUM ('held', 'released', 'cancelled');

CREATE TABLE release_holds (
    id                   uuid PRIMARY KEY,
    legacy_object_id     text NOT NULL CONSTRAINT release_holds_legacy_object_id_uq UNIQUE,
    payment_id           uuid NOT NULL REFERENCES payments (id),
    purchase_request_id  uuid NOT NULL REFERENCES purchase_requests (id),
    amount               numeric(38, 18) NOT NULL CONSTRAINT release_holds_amount_positive_ck CHECK (amount > 0),
    currency             offer_currency NOT NULL,
    reason               text,
    status               release_hold_status NOT NULL DEFAULT 'held',
    release_after        timestamptz,
    released_at          timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz
);

CREATE TABLE level_configs (
    id                uuid PRIMARY KEY,
    legacy_object_id  text NOT NULL CONSTRAINT level_configs_legacy_object_id_uq UNIQUE,
    level             integer NOT NULL UNIQUE,
    name              text NOT NULL,
    min_points        integer NOT NULL CHECK (min_points >= 0),
    perks             text[] NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz
);
