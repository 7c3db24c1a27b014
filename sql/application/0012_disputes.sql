-- 0012: disputes.
CREATE TYPE dispute_status AS ENUM ('open', 'under_review', 'resolved_buyer', 'resolved_seller', 'closed');

CREATE TABLE disputes (
    id                   uuid PRIMARY KEY,
    legacy_object_id     text NOT NULL CONSTRAINT disputes_legacy_object_id_uq UNIQUE,
    purchase_request_id  uuid NOT NULL,
    payment_id           uuid,
    opened_by            uuid NOT NULL,
    against_user_id      uuid,
    reason               text NOT NULL,
    status               dispute_status NOT NULL DEFAULT 'open',
    resolution           text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz,
    resolved_at          timestamptz
);
