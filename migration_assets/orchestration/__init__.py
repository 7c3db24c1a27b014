"""The control plane around a run: starting a run from the command line and following it
(``launch.py``), the pools runs hold (``pools.py``), the runs whose process died and releasing
them (``dead_runs.py``), every read of the Dagster instance (``records.py``), and the one module
that reaches into Dagster's private API (``dagster_internals.py``)."""
