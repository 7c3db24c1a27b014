"""``migration-assets``, the operator's command line, one module per command family:
``schema`` and ``doctor`` (``schema.py``), ``generate``, ``profile`` and ``scaffold``
(``source.py``), ``migrate``, ``verify``, ``watch`` and ``release`` (``runs.py``), ``summary``,
``status`` and ``diff`` (``report.py``), ``readiness`` (``readiness.py``), ``reconcile`` and
``ledger-conflicts`` (``catchup.py``); the parser and the one place errors become a line
(``main.py``); what they share (``common.py``). It builds on the lower packages and the code
location's entry point (``migration_assets.definitions``), never on ``defs/``."""
