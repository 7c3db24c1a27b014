"""Loading: one ``BatchStep`` (transform, resolve, write, bookkeeping in one transaction)
shared by the load loop (``run.py``), the dry run (``dry_run.py``) and the re-sync of given
documents (``resync.py``); the deferred-reference remaps (``remap.py``). Imports specs,
source, transform and target; no dagster."""
