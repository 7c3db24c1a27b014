-- 0004 (first of two): the funds ledger is append-only. This first guard refuses UPDATE;
-- 0013 adds the TRUNCATE guard and 0015 extends the row guard to DELETE.
CREATE FUNCTION funds_ledger_entries_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'funds_ledger_entries is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER funds_ledger_entries_no_update
    BEFORE UPDATE ON funds_ledger_entries
    FOR EACH ROW EXECUTE FUNCTION funds_ledger_entries_immutable();
