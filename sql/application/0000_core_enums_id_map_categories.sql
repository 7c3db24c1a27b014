-- 0000: core enums, id_map and categories (seed history: first Drizzle migration).
CREATE TYPE user_role AS ENUM ('user', 'seller', 'admin', 'moderator');
CREATE TYPE offer_currency AS ENUM ('USDT', 'USDC', 'ETH', 'BTC');

CREATE TABLE id_map (
    id          bigserial PRIMARY KEY,
    entity      text NOT NULL,
    legacy_id   text NOT NULL,
    new_id      uuid NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE categories (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    slug        text NOT NULL,
    is_active   boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);
