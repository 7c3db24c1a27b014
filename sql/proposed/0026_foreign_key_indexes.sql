-- 0026 (this platform, for the backend team): an index on every foreign key's referencing
-- column that has none. PostgreSQL does not create them: without one, deleting a parent row (or
-- changing its key) scans the whole referencing table to check the key is unused, once per row.
-- The application's own deletes pay it, and so does the catch-up's removal of documents Mongo no
-- longer holds: removing 3,333 seller offers at 1M documents took 94.8 s, each delete scanning
-- purchase_requests and payments, and 4.7 s with these (bench/README.md, (f)). Nothing is
-- dropped or changed.

CREATE INDEX user_refresh_tokens_user_id_idx ON user_refresh_tokens (user_id);
CREATE INDEX telegram_sessions_user_id_idx ON telegram_sessions (user_id);
CREATE INDEX purchase_requests_category_id_idx ON purchase_requests (category_id);
CREATE INDEX purchase_requests_selected_offer_id_idx ON purchase_requests (selected_offer_id);
CREATE INDEX purchase_requests_template_id_idx ON purchase_requests (template_id);
CREATE INDEX purchase_request_preferred_sellers_seller_id_idx ON purchase_request_preferred_sellers (seller_id);
CREATE INDEX seller_offers_seller_id_idx ON seller_offers (seller_id);
CREATE INDEX payments_payee_id_idx ON payments (payee_id);
CREATE INDEX payments_payer_id_idx ON payments (payer_id);
CREATE INDEX payments_seller_offer_id_idx ON payments (seller_offer_id);
CREATE INDEX funds_ledger_entries_user_id_idx ON funds_ledger_entries (user_id);
CREATE INDEX derived_destinations_payment_id_idx ON derived_destinations (payment_id);
CREATE INDEX derived_destinations_user_id_idx ON derived_destinations (user_id);
CREATE INDEX derived_destination_sweeps_destination_id_idx ON derived_destination_sweeps (destination_id);
CREATE INDEX point_transactions_user_id_idx ON point_transactions (user_id);
CREATE INDEX trezor_accounts_user_id_idx ON trezor_accounts (user_id);
CREATE INDEX trezor_derived_addresses_trezor_account_id_idx ON trezor_derived_addresses (trezor_account_id);
CREATE INDEX config_settings_updated_by_idx ON config_settings (updated_by);
CREATE INDEX config_setting_history_changed_by_idx ON config_setting_history (changed_by);
CREATE INDEX config_setting_history_setting_id_idx ON config_setting_history (setting_id);
CREATE INDEX reviews_purchase_request_id_idx ON reviews (purchase_request_id);
CREATE INDEX reviews_reviewer_id_idx ON reviews (reviewer_id);
CREATE INDEX reviews_seller_id_idx ON reviews (seller_id);
CREATE INDEX blog_posts_author_id_idx ON blog_posts (author_id);
CREATE INDEX request_templates_category_id_idx ON request_templates (category_id);
CREATE INDEX request_templates_owner_id_idx ON request_templates (owner_id);
CREATE INDEX chats_purchase_request_id_idx ON chats (purchase_request_id);
CREATE INDEX disputes_against_user_id_idx ON disputes (against_user_id);
CREATE INDEX disputes_opened_by_idx ON disputes (opened_by);
CREATE INDEX disputes_payment_id_idx ON disputes (payment_id);
CREATE INDEX disputes_purchase_request_id_idx ON disputes (purchase_request_id);
CREATE INDEX chat_participants_user_id_idx ON chat_participants (user_id);
CREATE INDEX chat_messages_sender_id_idx ON chat_messages (sender_id);
CREATE INDEX release_holds_payment_id_idx ON release_holds (payment_id);
CREATE INDEX release_holds_purchase_request_id_idx ON release_holds (purchase_request_id);
