-- 0027 (this platform): the reverse sync (PostgreSQL -> Mongo, to roll a domain back) and the
-- cutover record it requires.
-- removed_rows keeps, besides the rows the catch-up removes from PostgreSQL, every Mongo document the
-- reverse sync changes or deletes, as it was (canonical extended JSON: every BSON type kept),
-- written before the Mongo write. direction says which side the copy comes from.
ALTER TABLE migration.removed_rows
    ADD COLUMN direction text NOT NULL DEFAULT 'to_postgres' CHECK (direction IN ('to_postgres', 'to_mongo'));

-- cutover_records: who writes a domain now, and since when. 'pg': the application writes
-- PostgreSQL only (recorded when readiness gave GO and the operator confirmed the flip); 'dual'
-- and 'mongo': Mongo is written by the application again. The latest record of a domain holds.
CREATE TABLE migration.cutover_records (
    id           bigserial PRIMARY KEY,
    domain       text NOT NULL,
    writes       text NOT NULL CHECK (writes IN ('mongo', 'dual', 'pg')),
    cutover_at   timestamptz NOT NULL,
    readiness    text,                  -- the GO readiness run a 'pg' record rests on
    recorded_by  text NOT NULL,
    reason       text,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cutover_records_domain_idx ON migration.cutover_records (domain, id DESC);

-- reverse_sync_items: a reverse sync's plan and its checkpoint. The documents it found differing
-- are recorded (with the new ObjectIds given to rows that had none, in the same transaction);
-- each is marked applied once Mongo holds it. A run killed halfway is taken over by the next,
-- which renders each planned document again from the rows of the moment: the result is the
-- same as one clean run.
CREATE TABLE migration.reverse_sync_items (
    loader       text NOT NULL,
    run_id       text NOT NULL,
    document     text NOT NULL,
    action       text NOT NULL CHECK (action IN ('insert', 'update', 'delete')),
    state        text NOT NULL DEFAULT 'planned'
                 CHECK (state IN ('planned', 'applied', 'unchanged', 'refused')),
    detail       text,
    forced       text,                  -- the --force reason the run was started with
    planned_at   timestamptz NOT NULL DEFAULT now(),
    applied_at   timestamptz,
    PRIMARY KEY (loader, run_id, document)
);
CREATE INDEX reverse_sync_items_planned_idx ON migration.reverse_sync_items (loader) WHERE state = 'planned';
