"""Ingest: recordings → catalogs and resampled, segmented, quality-checked WebDataset shards."""
