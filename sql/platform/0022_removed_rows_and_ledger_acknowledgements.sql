-- 0022 (this platform): what the catch-up removes, and the ledger conflicts auditors accept.
-- removed_rows: every row the reconciliation deletes because its document is gone from Mongo,
-- copied here first, in the same transaction: a wrong delete is undone from PostgreSQL alone
-- (INSERT INTO public.<table> SELECT (jsonb_populate_record(NULL::public.<table>, row)).*).
-- Rows of other tables that a foreign key's ON DELETE CASCADE / SET NULL / SET DEFAULT
-- changes with them are copied too, before the delete, with what happened to them.
CREATE TABLE migration.removed_rows (
    id            bigserial PRIMARY KEY,
    loader        text NOT NULL,
    table_name    text NOT NULL,
    document      text NOT NULL,          -- the vanished document's _id (legacy id)
    row           jsonb NOT NULL,         -- the whole row, every column, as it was
    effect        text NOT NULL,          -- 'deleted', or what a foreign key's ON DELETE action did to it
    run_id        text,
    removed_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX removed_rows_document_idx ON migration.removed_rows (loader, document);

-- ledger_conflict_acks: an immutable ledger entry whose Mongo document changed or vanished
-- stays as PostgreSQL recorded it; an auditor may accept the difference, with a reason. The
-- acknowledgement holds for exactly that difference: another change of the same entry fails
-- the checks again.
CREATE TABLE migration.ledger_conflict_acks (
    loader            text NOT NULL,
    legacy_object_id  text NOT NULL,
    source_text       text,               -- the document's canonical row then (NULL: it had vanished)
    target_text       text NOT NULL,      -- the entry's canonical row in PostgreSQL
    differs           text NOT NULL,      -- what differs: the columns, or "absent from Mongo"
    acknowledged_by   text NOT NULL,
    reason            text NOT NULL,
    acknowledged_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (loader, legacy_object_id, acknowledged_at)
);
