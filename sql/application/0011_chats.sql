-- 0011: chats as the seed shipped them: participants and messages as JSONB blobs.
-- 0018 normalizes them into relational child tables (the Chat cutover blocker).
CREATE TYPE chat_type AS ENUM ('request', 'support', 'direct');

CREATE TABLE chats (
    id                   uuid PRIMARY KEY,
    legacy_object_id     text NOT NULL CONSTRAINT chats_legacy_object_id_uq UNIQUE,
    purchase_request_id  uuid,
    type                 chat_type NOT NULL,
    participants         jsonb NOT NULL DEFAULT '[]',
    messages             jsonb NOT NULL DEFAULT '[]',
    last_message_at      timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz
);
