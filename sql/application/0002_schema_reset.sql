-- 0002: schema reset. Drops the 0000/0001 tables and recreates id_map and categories,
-- now with the category self-reference (parent_id).
DROP TABLE trezor_derived_addresses;
DROP TABLE trezor_accounts;
DROP TABLE categories;
DROP TABLE id_map;

CREATE TABLE id_map (
    id          bigserial PRIMARY KEY,
    entity      text NOT NULL,
    legacy_id   text NOT NULL,
    new_id      uuid NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT id_map_entity_legacy_uq UNIQUE (entity, legacy_id)
);

CREATE TABLE categories (
    id                uuid PRIMARY KEY,
    legacy_object_id  text NOT NULL,
    name              text NOT NULL,
    slug              text NOT NULL,
    description       text,
    parent_id         uuid REFERENCES categories (id),
    is_active         boolean NOT NULL DEFAULT true,
    sort_order        integer NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz
);
CREATE INDEX categories_parent_id_idx ON categories (parent_id);
