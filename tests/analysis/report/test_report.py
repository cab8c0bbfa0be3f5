"""write_report end to end: every file it references exists, and each section degrades alone."""

import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from analysis import load_clustering, write_report
from analysis.report.plots import sonotype_colours, spectrogram_jpeg
from analysis.stats import compute_statistics
from analysis.store import open_store
from sonotype.cli.main import main
from sonotype.config import config_model
from sonotype.config.report import ReportConfig
from tests.analysis.report.conftest import ZONE, WrittenReport
from tests.analysis.report.fake_out import FakeOut, K

_SOURCES = re.compile(r'(?:src|href)="([^"#][^"]*)"')


def _sections(html: str) -> dict[str, str]:
    """Section id → its HTML."""
    parts = re.findall(r'<section id="([^"]+)">(.*?)</section>', html, re.DOTALL)
    return dict(parts)


def test_every_referenced_file_exists_and_the_page_stays_light(written_report: WrittenReport):
    html = written_report.index.read_text()
    report_dir = written_report.index.parent
    sources = [s for s in _SOURCES.findall(html) if not s.startswith("data:")]
    assert sources
    for source in sources:
        assert (report_dir / source.replace("%20", " ")).is_file(), source
    files = [p for p in report_dir.rglob("*") if p.is_file()]
    assert len(files) == len(set(sources)) + 1  # nothing written that the page does not use
    assert sum(p.stat().st_size for p in files) < 2_000_000
    audio = [s for s in sources if s.split("/")[1] == "audio"]
    assert len(audio) == K * written_report.config.examples_per_sonotype


def test_page_has_every_section_with_content(written_report: WrittenReport):
    sections = _sections(written_report.index.read_text())
    assert list(sections) == [
        "overview",
        "quality",
        "training",
        "gallery",
        "when-where",
        "map",
        "stability",
    ]
    assert all('class="notice' not in sections[s] for s in ("gallery", "when-where", "map"))
    assert sections["gallery"].count('class="card"') == K
    assert "America/Cayenne" in sections["when-where"]
    # versions: header + two; growth at the update: header + one row per sonotype
    assert sections["stability"].count("<tr>") == 1 + 2 + 1 + K
    assert "What the latest update grew or shrank" in sections["stability"]


def test_statistics_are_recomputed_in_the_reports_zone(written_report: WrittenReport):
    """The gallery's peak hours come from occurrence in America/Cayenne, not the saved UTC."""
    fake = written_report.fake
    store = open_store(fake.store)
    clustering = load_clustering(f"{fake.out}/clusters/default")
    local = compute_statistics(store, "default", clustering.n_rows, ZONE, 1000)["occurrence"]
    table = local.to_pandas()
    hours = table.groupby(["sonotype", "hour"])["seconds"].sum()
    gallery = _sections(written_report.index.read_text())["gallery"]
    for sonotype in range(K):
        peak = int(hours.loc[sonotype].idxmax())
        assert f"most present at {peak:02d} h ({ZONE})" in gallery


def _copy(fake: FakeOut, tmp_path: Path) -> tuple[Path, Path]:
    out, run = tmp_path / "out", tmp_path / "run"
    shutil.copytree(fake.out, out)
    shutil.copytree(fake.run_dir, run)
    return out, run


def test_an_empty_output_root_still_gives_a_page_that_says_what_is_missing(tmp_path: Path):
    index = write_report(str(tmp_path / "out"), config=ReportConfig())
    sections = _sections(Path(index).read_text())
    assert len(sections) == 7
    assert "recordings.parquet: no recordings catalog yet" in sections["overview"]
    assert "no training run given" in sections["training"]
    for name in ("gallery", "when-where", "stability"):
        assert "no clustering &#x27;default&#x27; yet" in sections[name]
    assert 'class="notice warning"' not in Path(index).read_text()


def test_broken_inputs_are_named_and_the_rest_of_the_page_is_written(
    fake_out: FakeOut, tmp_path: Path
):
    out, run = _copy(fake_out, tmp_path)
    (out / "clusters" / "default" / "stats" / "occurrence.parquet").write_bytes(b"garbage")
    (run / "metrics.jsonl").write_bytes(b"\x00\x01 not json\n")
    shard = sorted((out / "shards" / "y1").iterdir())[0]
    shard.unlink()
    index = write_report(str(out), config=ReportConfig(), run_dir=str(run))
    sections = _sections(Path(index).read_text())
    assert "could not be built" in sections["when-where"]
    assert "holds no metric records" in sections["training"]
    gallery = sections["gallery"]
    assert gallery.count('class="card"') == K
    assert f"shard {shard} not found" in gallery
    assert gallery.count("<audio") > 0
    assert "Hours of kept audio" in sections["overview"]


def test_without_labels_the_gallery_lists_sonotypes_from_the_history(
    fake_out: FakeOut, tmp_path: Path
):
    out, _ = _copy(fake_out, tmp_path)
    shutil.rmtree(out / "features.zarr" / "labels" / "default")
    (out / "features.zarr" / "labels" / "zarr.json").unlink()
    index = write_report(str(out), config=ReportConfig(timezone="UTC"))
    sections = _sections(Path(index).read_text())
    sizes = load_clustering(str(out / "clusters" / "default")).history[-1]["sizes"]
    gallery = sections["gallery"]
    assert gallery.count('class="card"') == K
    assert "no labels/default" in gallery
    for size in sizes:
        assert f"{size:,} frames" in gallery
    assert "no labels/default" in sections["map"]
    # The saved statistics (UTC, as the report) need no labels.
    assert "Hour of day × date" in sections["when-where"]


def test_a_new_report_removes_the_files_of_the_previous_one(fake_out: FakeOut, tmp_path: Path):
    out, _ = _copy(fake_out, tmp_path)
    stale = out / "report" / "audio" / "s0099-1.flac"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"old")
    write_report(str(out), config=ReportConfig(examples_per_sonotype=1))
    assert not stale.exists()
    [build] = (out / "report").glob("assets-*")
    assert len(list((build / "audio").iterdir())) == K
    write_report(str(out), config=ReportConfig(examples_per_sonotype=2))
    [rebuilt] = (out / "report").glob("assets-*")
    assert rebuilt != build
    assert len(list((rebuilt / "audio").iterdir())) == 2 * K


def test_a_killed_rebuild_leaves_the_previous_page_whole(
    fake_out: FakeOut, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Issue 16, failure 7: the rebuild deleted img/ and audio/ before writing new ones.
    out, _ = _copy(fake_out, tmp_path)
    write_report(str(out), config=ReportConfig(examples_per_sonotype=1))
    index = out / "report" / "index.html"
    before = index.read_text()

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("analysis.report.build.render_page", killed)
    with pytest.raises(KeyboardInterrupt):
        write_report(str(out), config=ReportConfig(examples_per_sonotype=2))
    assert index.read_text() == before
    sources = [s for s in _SOURCES.findall(before) if not s.startswith("data:")]
    assert all((index.parent / s.replace("%20", " ")).is_file() for s in sources)
    monkeypatch.undo()
    write_report(str(out), config=ReportConfig(examples_per_sonotype=1))
    assert len(list((out / "report").glob("assets-*"))) == 1  # the killed build's files went


def test_report_command_runs_in_process(fake_out: FakeOut, tmp_path: Path, capsys):
    out, run = _copy(fake_out, tmp_path)
    args = ["-q", "report", str(out), "--run", str(run), "--set", "examples_per_sonotype=1"]
    assert main(args) == 0
    assert (out / "report" / "index.html").is_file()
    assert main(["-q", "report", str(out), "--set", "timezone=Mars/Olympus"]) == 2
    assert "timezone" in capsys.readouterr().err


def test_report_config_is_a_registered_kind():
    assert config_model("report") is ReportConfig
    assert ReportConfig().timezone == "UTC"


def test_sonotype_colours_are_distinct():
    for k in (4, 20, 50):
        assert len(set(sonotype_colours(k))) == k


def test_spectrogram_thumbnails_put_low_frequencies_at_the_bottom():
    rate = 8000
    tone = np.sin(2 * np.pi * 1000 * np.arange(rate) / rate).astype(np.float32)
    data, width, height = spectrogram_jpeg(tone, rate)
    pixels = imread(io.BytesIO(data), format="jpeg")
    assert pixels.shape[:2] == (height, width) == (95, 240)
    brightest_row = int(pixels.astype(float).sum(axis=(1, 2)).argmax())
    # 1 kHz of 4 kHz is a quarter of the way up: row 95 - 1 - 95/4 from the top.
    assert abs(brightest_row - (height - 1 - height / 4)) <= 1.5


@pytest.mark.parametrize(
    ("max_examples", "per_card"), [(8, 2), (3, 0)], ids=["shared-budget", "k-over-budget"]
)
def test_the_example_budget_is_shared_by_the_sonotypes(
    fake_out: FakeOut, tmp_path: Path, max_examples: int, per_card: int
):
    out, _ = _copy(fake_out, tmp_path)
    config = ReportConfig(examples_per_sonotype=3, max_examples=max_examples)
    gallery = _sections(Path(write_report(str(out), config=config)).read_text())["gallery"]
    assert gallery.count('class="card"') == K
    assert gallery.count("<audio") == K * per_card
    if per_card == 0:
        assert "k=4 is above max_examples=3" in gallery
