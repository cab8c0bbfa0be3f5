"""The local Dask cluster of ingest and encode starts its workers with the shared settings."""

import os

from sonotype.dask_cluster import dask_client


def _worker_settings() -> tuple[str | None, bool]:
    import dask

    return os.environ.get("MALLOC_TRIM_THRESHOLD_"), dask.config.get(
        "distributed.worker.profile.enabled"
    )


def test_local_workers_run_without_malloc_trimming_or_the_profiler():
    with dask_client(workers=1, scheduler=None) as client:
        settings = list(client.run(_worker_settings).values())
    assert settings == [(None, False)]
