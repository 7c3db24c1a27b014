-- 0028 (this platform): the source side of a load's first verification, kept by the load itself.
-- Each batch commits, in the transaction of its rows and its checkpoint, what the verification
-- would compute from its documents: per _id prefix and table the canonical rows' count and hash
-- sum, the census of their field paths, the documents that cannot map, and which documents the
-- batch quarantined (with the rows each would have given). The checks that follow the load add
-- these up instead of reading and decoding the collection again; a later verification reads the
-- source afresh. A new generation of the loader's load deletes its rows.
CREATE TABLE migration.load_source_digests (
    id         bigserial PRIMARY KEY,
    loader     text NOT NULL,
    range_no   integer,
    position   text,
    documents  integer NOT NULL,
    digests    jsonb NOT NULL,
    taken_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX load_source_digests_loader_idx ON migration.load_source_digests (loader, id);
