"""A Dask cluster shared by the ingest tests (starting one costs seconds)."""

from collections.abc import Iterator

import dask
import pytest
from dask.distributed import LocalCluster

from sonotype.dask_cluster import WORKER_SETTINGS


@pytest.fixture(scope="session")
def dask_scheduler() -> Iterator[str]:
    """Address of a local two-worker cluster set up as ingest sets up its own."""
    with (
        dask.config.set(WORKER_SETTINGS),
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
    ):
        yield cluster.scheduler_address
