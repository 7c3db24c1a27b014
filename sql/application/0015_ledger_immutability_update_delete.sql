-- 0015: the ledger row guard covers DELETE as well as UPDATE.
DROP TRIGGER funds_ledger_entries_no_update ON funds_ledger_entries;
CREATE TRIGGER funds_ledger_entries_no_update
    BEFORE UPDATE ON funds_ledger_entries
    FOR EACH ROW EXECUTE FUNCTION funds_ledger_entries_immutable();
CREATE TRIGGER funds_ledger_entries_no_delete
    BEFORE DELETE ON funds_ledger_entries
    FOR EACH ROW EXECUTE FUNCTION funds_ledger_entries_immutable();
