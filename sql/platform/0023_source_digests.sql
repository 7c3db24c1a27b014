-- 0023 (this platform): what the last catch-up pass read from each collection, per _id prefix.
-- raw_count/raw_sum digest the documents' BSON bytes; row_counts/row_sums are the canonical
-- digests per table (the order of the loader's tables) those very bytes gave. The next pass
-- reads every document's bytes again but canonicalizes only the prefixes whose bytes changed;
-- a new fingerprint (the canonical code, the collection-wide context) invalidates them all.
CREATE TABLE migration.source_digests (
    loader       text NOT NULL,
    prefix       text NOT NULL,
    fingerprint  text NOT NULL,
    raw_count    bigint NOT NULL,
    raw_sum      numeric NOT NULL,
    row_counts   bigint[] NOT NULL,
    row_sums     numeric[] NOT NULL,
    taken_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (loader, prefix)
);
