-- 0013: money-integrity CHECKs, the ledger TRUNCATE guard and id_map's composite key.
ALTER TABLE payments ADD CONSTRAINT payments_amount_positive_ck CHECK (amount > 0);
ALTER TABLE funds_ledger_entries ADD CONSTRAINT funds_ledger_entries_amount_positive_ck CHECK (amount > 0);
ALTER TABLE seller_offers ADD CONSTRAINT seller_offers_price_nonnegative_ck CHECK (price >= 0);
ALTER TABLE purchase_requests ADD CONSTRAINT purchase_requests_budget_nonnegative_ck
    CHECK (budget_amount IS NULL OR budget_amount >= 0);
ALTER TABLE purchase_requests ADD CONSTRAINT purchase_requests_quantity_positive_ck CHECK (quantity > 0);
ALTER TABLE request_templates ADD CONSTRAINT request_templates_budget_nonnegative_ck
    CHECK (budget_amount IS NULL OR budget_amount >= 0);
ALTER TABLE payment_quotes ADD CONSTRAINT payment_quotes_amounts_positive_ck
    CHECK (rate > 0 AND base_amount > 0 AND quote_amount > 0);
ALTER TABLE derived_destination_sweeps ADD CONSTRAINT derived_destination_sweeps_amount_positive_ck
    CHECK (amount > 0);
ALTER TABLE purchase_request_delivery_info ADD CONSTRAINT purchase_request_delivery_info_cost_nonnegative_ck
    CHECK (shipping_cost IS NULL OR shipping_cost >= 0);

CREATE FUNCTION funds_ledger_entries_no_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'funds_ledger_entries is append-only: TRUNCATE refused'
        USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER funds_ledger_entries_no_truncate
    BEFORE TRUNCATE ON funds_ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION funds_ledger_entries_no_truncate();

ALTER TABLE id_map DROP CONSTRAINT id_map_pkey;
ALTER TABLE id_map DROP CONSTRAINT id_map_entity_legacy_uq;
ALTER TABLE id_map DROP COLUMN id;
ALTER TABLE id_map ADD CONSTRAINT id_map_pkey PRIMARY KEY (entity, legacy_id);
-- Reverse lookup: new id -> legacy id.
CREATE UNIQUE INDEX id_map_entity_new_id_uq ON id_map (entity, new_id);
