"""chats (Mongo ``chats``) -> ``chats``, ``chat_participants``, ``chat_messages``: the Chat
normalization the seed names as the blocker for Chat cutover.

Document shape::

    {_id, purchaseRequest?: ObjectId(purchaserequests), type: "request"|"support"|"direct",
     participants: [{user: ObjectId(users), role, joinedAt?, lastReadAt?}],
     messages: [{_id: ObjectId, sender: ObjectId(users), body, attachments?: [str],
                 sentAt, editedAt?}],
     lastMessageAt?, createdAt, updatedAt?}

The seed's DrizzleChatRepo kept ``participants`` and ``messages`` as JSONB blobs on
``chats``; here (sql/0018) they are relational child tables and ``chats`` has no JSONB:

==============================  ====================================================
Mongo field                     table
==============================  ====================================================
the document                    chats
participants[] (objects)        chat_participants, key (chat_id, user_id)
messages[] (subdocuments)       chat_messages, the message ``_id`` -> legacy_object_id
==============================  ====================================================

Rules and awkward cases:

* Participants of chats created before join tracking lack ``joinedAt``: the chat's
  ``createdAt`` is used (they were in it from the start).
* A user listed twice in one chat is refused by the (chat_id, user_id) key: the whole chat
  is quarantined, never half-loaded.
* Messages keep their own ObjectId (``chat_messages.legacy_object_id``, unique) so replies,
  read receipts and notifications that cite a message id still resolve.
* Messages sent before attachments existed lack ``attachments`` (-> empty array).
* A sender or participant that is not in ``users`` quarantines the chat (missing_reference).
* Bodies are Unicode (emoji, Turkish, CJK) and load unchanged.

Moves with ``REPO_CHAT`` / ``CHAT_STORE`` (no dual-write wrapper in the backend yet).
"""

from collections.abc import Mapping
from typing import Any

from migration_assets.specs.columns import id_column, legacy_column, parent_column
from migration_assets.specs.enums import CHAT_PARTICIPANT_ROLE, CHAT_TYPE
from migration_assets.specs.kinds import TEXT, TEXT_ARRAY, TIMESTAMP, Ref
from migration_assets.specs.model import MISSING, Column, LoaderSpec, TableSpec, array, get_path


def joined_at(source: Mapping[str, Any], doc: Mapping[str, Any], ctx: Mapping[str, Any]) -> Any:
    """A participant's joinedAt, or (older chats) the chat's createdAt."""
    value = get_path(source, "joinedAt")
    if value is MISSING or value is None:
        return doc.get("createdAt", MISSING)
    return value


CHATS = TableSpec(
    table="chats",
    description="Chats (request, support, direct); participants and messages are child tables.",
    columns=(
        id_column("chats"),
        legacy_column(),
        Column("purchase_request_id", Ref("purchase_requests"), "purchaseRequest"),
        Column("type", CHAT_TYPE, "type", required=True),
        Column("last_message_at", TIMESTAMP, "lastMessageAt"),
        Column("created_at", TIMESTAMP, "createdAt", required=True),
        Column("updated_at", TIMESTAMP, "updatedAt"),
    ),
)

CHAT_PARTICIPANTS = TableSpec(
    table="chat_participants",
    description="Members of a chat (participants[]), one row per user.",
    rows=array("participants"),
    key=("chat_id", "user_id"),
    parent_column="chat_id",
    columns=(
        parent_column("chat_id", "chats"),
        Column("user_id", Ref("users"), "user", required=True),
        Column("role", CHAT_PARTICIPANT_ROLE, "role", required=True),
        Column("joined_at", TIMESTAMP, compute=joined_at, lineage=("joinedAt", "$root.createdAt"), required=True,
               doc="joinedAt, or the chat's createdAt for participants of older chats"),
        Column("last_read_at", TIMESTAMP, "lastReadAt"),
    ),
)

CHAT_MESSAGES = TableSpec(
    table="chat_messages",
    description="Messages of a chat (messages[] subdocuments, each with its own ObjectId).",
    rows=array("messages"),
    parent_column="chat_id",
    columns=(
        id_column("chat_messages"),
        legacy_column(),
        parent_column("chat_id", "chats"),
        Column("sender_id", Ref("users"), "sender", required=True),
        Column("body", TEXT, "body", required=True),
        Column("attachments", TEXT_ARRAY, "attachments", required=True, default=[]),
        Column("sent_at", TIMESTAMP, "sentAt", required=True),
        Column("edited_at", TIMESTAMP, "editedAt"),
    ),
)

LOADER = LoaderSpec(
    name="chats",
    collection="chats",
    domain="chat",
    tables=(CHATS, CHAT_PARTICIPANTS, CHAT_MESSAGES),
    flags=("REPO_CHAT", "CHAT_STORE"),
)
