"""Specs: the spec model, column kinds, enums, ids, the loader registry and the source
contract. Imports only the ground-floor modules (``redaction``, ``markdown``); no dagster."""
