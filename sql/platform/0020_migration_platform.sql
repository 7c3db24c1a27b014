-- 0020 (this platform): bookkeeping of the migration itself, in its own schema, apart from the
-- application's. The platform's role owns it (it creates it; see migration-assets schema --print-grants).
CREATE SCHEMA IF NOT EXISTS migration;

-- quarantine: every source document that could not be mapped, with why and its raw bytes.
CREATE TABLE migration.quarantine (
    id             bigserial PRIMARY KEY,
    loader         text NOT NULL,
    collection     text NOT NULL,
    legacy_id      text NOT NULL,
    raw_sha256     text NOT NULL,
    reason_code    text NOT NULL,
    reason         text NOT NULL,
    reasons        jsonb NOT NULL,
    raw_bson       bytea,
    raw_json       text,
    run_id         text,
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at    timestamptz,
    resolution     text
);
-- One open entry per loader, document and exact bytes (a duplicated _id has two).
CREATE UNIQUE INDEX quarantine_open_uq
    ON migration.quarantine (loader, legacy_id, raw_sha256) WHERE resolved_at IS NULL;

-- load_checkpoints: how far a loader got, committed in the same transaction as the rows.
CREATE TABLE migration.load_checkpoints (
    loader              text PRIMARY KEY,
    generation          bigint NOT NULL DEFAULT 1,
    source_fingerprint  text NOT NULL,
    position            text,
    docs_read           bigint NOT NULL DEFAULT 0,
    docs_quarantined    bigint NOT NULL DEFAULT 0,
    rows_written        jsonb NOT NULL DEFAULT '{}',
    status              text NOT NULL CHECK (status IN ('running', 'completed')),
    -- fresh: every target table was empty when this generation started, so batches may
    -- COPY straight into the tables (a conflict falls back to the merge path).
    fresh               boolean NOT NULL DEFAULT false,
    run_id              text,
    started_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    completed_at        timestamptz
);

-- deferred_refs: references that can only be set once their target is loaded
-- (self-references, and purchase_requests.selected_offer_id after seller_offers).
CREATE TABLE migration.deferred_refs (
    target_table      text NOT NULL,
    target_column     text NOT NULL,
    row_id            uuid NOT NULL,
    source_legacy_id  text NOT NULL,
    ref_table         text NOT NULL,
    ref_legacy_id     text NOT NULL,
    PRIMARY KEY (target_table, target_column, row_id)
);

-- canon_jsonb: the canonical text of a JSON value, the same encoding the Python side
-- computes from the Mongo document (sorted keys, length-prefixed strings, trimmed numbers).
CREATE FUNCTION migration.canon_jsonb(v jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    r text;
    k text;
    e jsonb;
BEGIN
    CASE jsonb_typeof(v)
        WHEN 'null' THEN RETURN 'z';
        WHEN 'boolean' THEN RETURN CASE WHEN v = 'true'::jsonb THEN 't' ELSE 'f' END;
        WHEN 'number' THEN RETURN 'n' || trim_scale((v #>> '{}')::numeric)::text;
        WHEN 'string' THEN
            r := v #>> '{}';
            RETURN 's' || length(r) || ':' || r;
        WHEN 'array' THEN
            r := '[';
            FOR e IN SELECT x FROM jsonb_array_elements(v) WITH ORDINALITY AS a(x, i) ORDER BY i LOOP
                r := r || migration.canon_jsonb(e);
            END LOOP;
            RETURN r || ']';
        ELSE
            r := '{';
            FOR k, e IN SELECT key, value FROM jsonb_each(v) ORDER BY key COLLATE "C" LOOP
                r := r || 's' || length(k) || ':' || k || migration.canon_jsonb(e);
            END LOOP;
            RETURN r || '}';
    END CASE;
END;
$$;

-- canon_hash60: the first 60 bits of md5 as a bigint; sums of these are the
-- order-independent table and range checksums.
CREATE FUNCTION migration.hash60(t text) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT ('x' || substr(md5(t), 1, 15))::bit(60)::bigint
$$;
