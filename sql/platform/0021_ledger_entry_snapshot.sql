-- 0021 (this platform): what each funds-ledger entry looked like when a run first saw it.
-- The ledger_append_only check compares every entry with its recorded hash on each run:
-- an entry that changed or disappeared since is a failure, never a silent rewrite.
CREATE TABLE migration.ledger_entry_snapshot (
    legacy_object_id  text PRIMARY KEY,
    entry_id          uuid NOT NULL,
    entry_hash        text NOT NULL,          -- md5 of the whole row's text
    first_seen_run    text,
    first_seen_at     timestamptz NOT NULL DEFAULT now()
);
