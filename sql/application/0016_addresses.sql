-- 0016: user addresses, at most one primary address per user.
CREATE TYPE address_type AS ENUM ('shipping', 'billing', 'pickup');

CREATE TABLE addresses (
    id                uuid PRIMARY KEY,
    legacy_object_id  text NOT NULL CONSTRAINT addresses_legacy_object_id_uq UNIQUE,
    user_id           uuid NOT NULL REFERENCES users (id),
    type              address_type NOT NULL DEFAULT 'shipping',
    is_primary        boolean NOT NULL DEFAULT false,
    label             text,
    recipient_name    text,
    line1             text NOT NULL,
    line2             text,
    city              text NOT NULL,
    region            text,
    postal_code       text,
    country_code      text NOT NULL,
    phone             text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz
);
CREATE UNIQUE INDEX addresses_one_primary_per_user_uq ON addresses (user_id) WHERE is_primary;
