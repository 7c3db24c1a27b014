-- 0014: physical foreign keys across the schema, added NOT VALID (no long lock on a live
-- database) and then validated.
ALTER TABLE user_refresh_tokens ADD CONSTRAINT user_refresh_tokens_user_id_fk
    FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
ALTER TABLE telegram_links ADD CONSTRAINT telegram_links_user_id_fk
    FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
ALTER TABLE telegram_sessions ADD CONSTRAINT telegram_sessions_user_id_fk
    FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
ALTER TABLE purchase_requests ADD CONSTRAINT purchase_requests_buyer_id_fk
    FOREIGN KEY (buyer_id) REFERENCES users (id) NOT VALID;
ALTER TABLE purchase_requests ADD CONSTRAINT purchase_requests_category_id_fk
    FOREIGN KEY (category_id) REFERENCES categories (id) NOT VALID;
ALTER TABLE purchase_requests ADD CONSTRAINT purchase_requests_selected_offer_id_fk
    FOREIGN KEY (selected_offer_id) REFERENCES seller_offers (id) NOT VALID;
ALTER TABLE purchase_request_preferred_sellers ADD CONSTRAINT purchase_request_preferred_sellers_seller_id_fk
    FOREIGN KEY (seller_id) REFERENCES users (id) NOT VALID;
ALTER TABLE funds_ledger_entries ADD CONSTRAINT funds_ledger_entries_user_id_fk
    FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
ALTER TABLE derived_destinations ADD CONSTRAINT derived_destinations_payment_id_fk
    FOREIGN KEY (payment_id) REFERENCES payments (id) NOT VALID;
ALTER TABLE derived_destinations ADD CONSTRAINT derived_destinations_user_id_fk
    FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
ALTER TABLE point_transactions ADD CONSTRAINT point_transactions_user_id_fk
    FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
ALTER TABLE trezor_accounts ADD CONSTRAINT trezor_accounts_user_id_fk
    FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
ALTER TABLE config_settings ADD CONSTRAINT config_settings_updated_by_fk
    FOREIGN KEY (updated_by) REFERENCES users (id) NOT VALID;
ALTER TABLE config_setting_history ADD CONSTRAINT config_setting_history_changed_by_fk
    FOREIGN KEY (changed_by) REFERENCES users (id) NOT VALID;
ALTER TABLE shop_settings ADD CONSTRAINT shop_settings_seller_id_fk
    FOREIGN KEY (seller_id) REFERENCES users (id) NOT VALID;
ALTER TABLE reviews ADD CONSTRAINT reviews_reviewer_id_fk
    FOREIGN KEY (reviewer_id) REFERENCES users (id) NOT VALID;
ALTER TABLE reviews ADD CONSTRAINT reviews_seller_id_fk
    FOREIGN KEY (seller_id) REFERENCES users (id) NOT VALID;
ALTER TABLE reviews ADD CONSTRAINT reviews_purchase_request_id_fk
    FOREIGN KEY (purchase_request_id) REFERENCES purchase_requests (id) NOT VALID;
ALTER TABLE blog_posts ADD CONSTRAINT blog_posts_author_id_fk
    FOREIGN KEY (author_id) REFERENCES users (id) NOT VALID;
ALTER TABLE notifications ADD CONSTRAINT notifications_user_id_fk
    FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
ALTER TABLE disputes ADD CONSTRAINT disputes_purchase_request_id_fk
    FOREIGN KEY (purchase_request_id) REFERENCES purchase_requests (id) NOT VALID;
ALTER TABLE disputes ADD CONSTRAINT disputes_payment_id_fk
    FOREIGN KEY (payment_id) REFERENCES payments (id) NOT VALID;
ALTER TABLE disputes ADD CONSTRAINT disputes_opened_by_fk
    FOREIGN KEY (opened_by) REFERENCES users (id) NOT VALID;
ALTER TABLE disputes ADD CONSTRAINT disputes_against_user_id_fk
    FOREIGN KEY (against_user_id) REFERENCES users (id) NOT VALID;
ALTER TABLE chats ADD CONSTRAINT chats_purchase_request_id_fk
    FOREIGN KEY (purchase_request_id) REFERENCES purchase_requests (id) NOT VALID;

DO $$
DECLARE c record;
BEGIN
    FOR c IN
        SELECT conrelid::regclass AS tbl, conname
        FROM pg_constraint
        WHERE contype = 'f' AND NOT convalidated AND connamespace = 'public'::regnamespace
    LOOP
        EXECUTE format('ALTER TABLE %s VALIDATE CONSTRAINT %I', c.tbl, c.conname);
    END LOOP;
END;
$$;
