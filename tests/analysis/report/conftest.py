"""A fake OUT/ written once per session, and the report written on it once (read-only for tests)."""

from dataclasses import dataclass
from pathlib import Path

import pytest

from analysis import write_report
from sonotype.config.report import ReportConfig
from tests.analysis.report.fake_out import FakeOut, write_fake_out

ZONE = "America/Cayenne"


@dataclass(frozen=True)
class WrittenReport:
    """The report written on the session's fake OUT/ (with America/Cayenne time)."""

    fake: FakeOut
    index: Path
    config: ReportConfig


@pytest.fixture(scope="session")
def fake_out(tmp_path_factory: pytest.TempPathFactory) -> FakeOut:
    """A complete OUT/ with catalogs, shards, store, a 2-version clustering and a run."""
    return write_fake_out(tmp_path_factory.mktemp("report-out"))


@pytest.fixture(scope="session")
def written_report(fake_out: FakeOut) -> WrittenReport:
    config = ReportConfig(timezone=ZONE, map_sample=500)
    index = write_report(fake_out.out, config=config, run_dir=fake_out.run_dir)
    return WrittenReport(fake_out, Path(index), config)
