-- 0018 (this platform): Chat normalization, the open blocker for Chat read cutover.
-- Participants and messages leave their JSONB blobs for relational child tables.
CREATE TYPE chat_participant_role AS ENUM ('buyer', 'seller', 'admin', 'support');

CREATE TABLE chat_participants (
    chat_id       uuid NOT NULL REFERENCES chats (id),
    user_id       uuid NOT NULL REFERENCES users (id),
    role          chat_participant_role NOT NULL,
    joined_at     timestamptz NOT NULL,
    last_read_at  timestamptz,
    PRIMARY KEY (chat_id, user_id)
);

CREATE TABLE chat_messages (
    id                uuid PRIMARY KEY,
    legacy_object_id  text NOT NULL CONSTRAINT chat_messages_legacy_object_id_uq UNIQUE,
    chat_id           uuid NOT NULL REFERENCES chats (id),
    sender_id         uuid NOT NULL REFERENCES users (id),
    body              text NOT NULL,
    attachments       text[] NOT NULL DEFAULT '{}',
    sent_at           timestamptz NOT NULL,
    edited_at         timestamptz
);
CREATE INDEX chat_messages_chat_id_sent_at_idx ON chat_messages (chat_id, sent_at);

-- Any chat already dual-written as blobs is expanded before the blobs go.
INSERT INTO chat_participants (chat_id, user_id, role, joined_at, last_read_at)
SELECT c.id, (p->>'user_id')::uuid, (p->>'role')::chat_participant_role,
       (p->>'joined_at')::timestamptz, (p->>'last_read_at')::timestamptz
FROM chats c, jsonb_array_elements(c.participants) p;
INSERT INTO chat_messages (id, legacy_object_id, chat_id, sender_id, body, attachments, sent_at, edited_at)
SELECT (m->>'id')::uuid, m->>'legacy_object_id', c.id, (m->>'sender_id')::uuid, m->>'body',
       coalesce(ARRAY(SELECT jsonb_array_elements_text(m->'attachments')), '{}'),
       (m->>'sent_at')::timestamptz, (m->>'edited_at')::timestamptz
FROM chats c, jsonb_array_elements(c.messages) m;

ALTER TABLE chats DROP COLUMN participants, DROP COLUMN messages;
