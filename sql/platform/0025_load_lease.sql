-- 0025 (this platform): a load's owner is a lease. load_checkpoints.run_id names the run that owns
-- the loader's running generation; these columns say whether that run still lives, for a second run
-- of any Dagster instance on any host: the process that runs it (host, pid and its start time, so a
-- reused pid is not mistaken for it), its last heartbeat, and whether it gave the load up (its run
-- failed). Only a dead, finished or released owner is replaced.
ALTER TABLE migration.load_checkpoints
    ADD COLUMN owner_host     text,
    ADD COLUMN owner_pid      integer,
    ADD COLUMN owner_started  double precision,
    ADD COLUMN heartbeat_at   timestamptz,
    ADD COLUMN released_at    timestamptz;
