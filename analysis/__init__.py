"""Analysis: the Zarr feature store, out-of-core clustering, statistics and the report."""
