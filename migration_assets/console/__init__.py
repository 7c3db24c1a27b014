"""The operator's console behind ``migration-assets`` (``cli.py``): live progress and results of
a run from its own events (``progress.py``, ``runs.py``), the terminal or plain-line rendering
and tables (``render.py``, through rich), one-line errors with the next step (``errors.py``),
the exit statuses (``exits.py``) and the ``--json`` documents (``jsonout.py``)."""
