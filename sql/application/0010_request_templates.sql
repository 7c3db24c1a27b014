-- 0010: request templates, the template reference on purchase requests and the
-- one-value-per-key rule for purchase request specifications.
CREATE TABLE request_templates (
    id                uuid PRIMARY KEY,
    legacy_object_id  text NOT NULL CONSTRAINT request_templates_legacy_object_id_uq UNIQUE,
    owner_id          uuid NOT NULL REFERENCES users (id),
    category_id       uuid NOT NULL REFERENCES categories (id),
    title             text NOT NULL,
    description       text,
    default_quantity  integer NOT NULL DEFAULT 1,
    budget_amount     numeric(38, 18),
    budget_currency   offer_currency NOT NULL DEFAULT 'USDT',
    is_public         boolean NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz
);

ALTER TABLE purchase_requests ADD COLUMN template_id uuid REFERENCES request_templates (id);

ALTER TABLE purchase_request_specifications
    ADD CONSTRAINT purchase_request_specifications_request_key_uq UNIQUE (purchase_request_id, key);
