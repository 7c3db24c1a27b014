"""The Mongo side: one ``Source`` protocol (``documents.py``) with a live-server
implementation (``live.py``, pymongo) and a mongodump-directory one (``dump.py``). Imports
the specs and the ground floor only; no dagster."""
