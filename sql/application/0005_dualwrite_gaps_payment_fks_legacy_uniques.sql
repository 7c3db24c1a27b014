-- 0005: pg_dualwrite_gaps, payment foreign keys, legacy_object_id uniques and the
-- pending-payment index fix.
CREATE TABLE pg_dualwrite_gaps (
    id           bigserial PRIMARY KEY,
    entity       text NOT NULL,
    legacy_id    text,
    pg_id        uuid,
    operation    text NOT NULL CHECK (operation IN ('insert', 'update', 'delete', 'upsert')),
    error        text,
    payload      jsonb,
    attempts     integer NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz,
    resolution   text
);
CREATE INDEX pg_dualwrite_gaps_open_idx ON pg_dualwrite_gaps (entity, created_at) WHERE resolved_at IS NULL;

ALTER TABLE payments
    ADD CONSTRAINT payments_purchase_request_id_fk
        FOREIGN KEY (purchase_request_id) REFERENCES purchase_requests (id),
    ADD CONSTRAINT payments_seller_offer_id_fk
        FOREIGN KEY (seller_offer_id) REFERENCES seller_offers (id),
    ADD CONSTRAINT payments_payer_id_fk FOREIGN KEY (payer_id) REFERENCES users (id),
    ADD CONSTRAINT payments_payee_id_fk FOREIGN KEY (payee_id) REFERENCES users (id);
ALTER TABLE funds_ledger_entries
    ADD CONSTRAINT funds_ledger_entries_payment_id_fk
        FOREIGN KEY (payment_id) REFERENCES payments (id);

-- One row per Mongo document: the legacy ObjectId is unique in every migrated table.
ALTER TABLE categories ADD CONSTRAINT categories_legacy_object_id_uq UNIQUE (legacy_object_id);
ALTER TABLE users ADD CONSTRAINT users_legacy_object_id_uq UNIQUE (legacy_object_id);
ALTER TABLE user_passkeys ADD CONSTRAINT user_passkeys_legacy_object_id_uq UNIQUE (legacy_object_id);
ALTER TABLE user_refresh_tokens ADD CONSTRAINT user_refresh_tokens_legacy_object_id_uq UNIQUE (legacy_object_id);
ALTER TABLE telegram_links ADD CONSTRAINT telegram_links_legacy_object_id_uq UNIQUE (legacy_object_id);
ALTER TABLE telegram_sessions ADD CONSTRAINT telegram_sessions_legacy_object_id_uq UNIQUE (legacy_object_id);
ALTER TABLE purchase_requests ADD CONSTRAINT purchase_requests_legacy_object_id_uq UNIQUE (legacy_object_id);
ALTER TABLE delivery_attempts ADD CONSTRAINT delivery_attempts_legacy_object_id_uq UNIQUE (legacy_object_id);
ALTER TABLE seller_offers ADD CONSTRAINT seller_offers_legacy_object_id_uq UNIQUE (legacy_object_id);
ALTER TABLE payments ADD CONSTRAINT payments_legacy_object_id_uq UNIQUE (legacy_object_id);
ALTER TABLE funds_ledger_entries ADD CONSTRAINT funds_ledger_entries_legacy_object_id_uq UNIQUE (legacy_object_id);
ALTER TABLE derived_destinations ADD CONSTRAINT derived_destinations_legacy_object_id_uq UNIQUE (legacy_object_id);
ALTER TABLE derived_destination_sweeps ADD CONSTRAINT derived_destination_sweeps_legacy_object_id_uq UNIQUE (legacy_object_id);
ALTER TABLE point_transactions ADD CONSTRAINT point_transactions_legacy_object_id_uq UNIQUE (legacy_object_id);
ALTER TABLE trezor_accounts ADD CONSTRAINT trezor_accounts_legacy_object_id_uq UNIQUE (legacy_object_id);
ALTER TABLE trezor_derived_addresses ADD CONSTRAINT trezor_derived_addresses_legacy_object_id_uq UNIQUE (legacy_object_id);
ALTER TABLE config_settings ADD CONSTRAINT config_settings_legacy_object_id_uq UNIQUE (legacy_object_id);
ALTER TABLE config_setting_history ADD CONSTRAINT config_setting_history_legacy_object_id_uq UNIQUE (legacy_object_id);
ALTER TABLE shop_settings ADD CONSTRAINT shop_settings_legacy_object_id_uq UNIQUE (legacy_object_id);
ALTER TABLE reviews ADD CONSTRAINT reviews_legacy_object_id_uq UNIQUE (legacy_object_id);
ALTER TABLE blog_posts ADD CONSTRAINT blog_posts_legacy_object_id_uq UNIQUE (legacy_object_id);
ALTER TABLE notifications ADD CONSTRAINT notifications_legacy_object_id_uq UNIQUE (legacy_object_id);

-- The pending-payment index was meant to guard one pending payment per request.
DROP INDEX payments_pending_idx;
CREATE UNIQUE INDEX payments_one_pending_per_request_uq
    ON payments (purchase_request_id) WHERE status = 'pending';
