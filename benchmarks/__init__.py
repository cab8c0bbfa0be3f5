"""Reproducible performance harness; results and how they were obtained are in RESULTS.md."""
