-- 0024 (this platform): the checkpoints of a ranged load, one row per range. The loader's
-- load_checkpoints row holds the generation, the source fingerprint and the run that owns it; each
-- range's position commits in the same transaction as that range's rows, so a range killed
-- mid-load resumes alone and the others keep what they committed.
ALTER TABLE migration.load_checkpoints ADD COLUMN ranges integer;  -- NULL: one stream

CREATE TABLE migration.load_ranges (
    loader              text NOT NULL REFERENCES migration.load_checkpoints (loader) ON DELETE CASCADE,
    range_no            integer NOT NULL,
    -- the span in the source's own order: hex ObjectIds (a live server) or byte offsets
    -- (a mongodump); NULL is the collection's beginning or end
    span_start          text,
    span_end            text,
    planned_docs        bigint,
    position            text,
    status              text NOT NULL CHECK (status IN ('running', 'completed')),
    docs_read           bigint NOT NULL DEFAULT 0,
    docs_quarantined    bigint NOT NULL DEFAULT 0,
    rows_written        jsonb NOT NULL DEFAULT '{}',
    run_id              text,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    completed_at        timestamptz,
    PRIMARY KEY (loader, range_no)
);
