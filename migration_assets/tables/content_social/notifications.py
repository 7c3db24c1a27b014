"""notifications (Mongo ``notifications``) -> ``notifications``.

Document shape::

    {_id, user: ObjectId(users), type, title, body?, data?: <object>, readAt?: Date,
     createdAt}

The in-app inbox, the largest collection after the ledger and chat messages. ``data`` is
the event's payload (ids of the offer, payment or chat it links to, amounts, nested
objects) and stays a JSON document in ``jsonb``: the inbox only renders it. ObjectIds in it
become hex strings, Decimal128 exact JSON numbers, dates ISO-8601 text. Older
notifications have neither ``data`` nor ``body``; unread ones no ``readAt``. ``type`` is
free text (new event types appear without a schema change). Moves with
``NOTIFICATION_STORE`` / ``REPO_NOTIFICATION``.

Ranged: each notification stands alone (no collection-wide context), so its load splits into
``_id`` ranges that run as separate steps (``ranges: auto | N`` in the run config).
"""

from migration_assets.specs.columns import id_column, legacy_column
from migration_assets.specs.kinds import JSON, TEXT, TIMESTAMP, Ref
from migration_assets.specs.model import Column, LoaderSpec, TableSpec

NOTIFICATIONS = TableSpec(
    table="notifications",
    description="Users' in-app notifications.",
    columns=(
        id_column("notifications"),
        legacy_column(),
        Column("user_id", Ref("users"), "user", required=True),
        Column("type", TEXT, "type", required=True),
        Column("title", TEXT, "title", required=True),
        Column("body", TEXT, "body"),
        Column("data", JSON, "data"),
        Column("read_at", TIMESTAMP, "readAt"),
        Column("created_at", TIMESTAMP, "createdAt", required=True),
    ),
)

LOADER = LoaderSpec(
    name="notifications",
    collection="notifications",
    domain="content_social",
    tables=(NOTIFICATIONS,),
    flags=("NOTIFICATION_STORE", "REPO_NOTIFICATION"),
    ranged=True,  # grows without bound: loads in _id ranges, one step each (load/ranged.py)
)
