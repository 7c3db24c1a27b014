"""Benchmark harness (not a test): ``python -m bench.run``; see bench/README.md."""
