"""Reproducible performance harness; results are recorded in benchmarks/RESULTS.md."""
