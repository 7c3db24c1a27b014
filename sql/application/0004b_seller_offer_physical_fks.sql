-- 0004 (second of two): physical foreign keys for seller offers.
ALTER TABLE seller_offers
    ADD CONSTRAINT seller_offers_purchase_request_id_fk
        FOREIGN KEY (purchase_request_id) REFERENCES purchase_requests (id),
    ADD CONSTRAINT seller_offers_seller_id_fk
        FOREIGN KEY (seller_id) REFERENCES users (id);
