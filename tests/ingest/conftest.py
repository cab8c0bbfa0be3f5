"""A Dask cluster shared by the ingest tests (starting one costs seconds)."""

from collections.abc import Iterator

import pytest
from dask.distributed import LocalCluster


@pytest.fixture(scope="session")
def dask_scheduler() -> Iterator[str]:
    """Address of a local two-worker cluster, closed at the end of the session."""
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        yield cluster.scheduler_address
