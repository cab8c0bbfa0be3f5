"""metrics.jsonl: strided to a bounded number of points, bad lines skipped, metrics grouped."""

import json
from pathlib import Path

import pytest

from analysis.report.assets import Assets
from analysis.report.context import MissingInputError, ReportContext
from analysis.report.training import build, grouped, read_metrics
from sonotype.config.report import ReportConfig
from tests.analysis.report.fake_out import write_metrics


def test_long_runs_are_strided_and_keep_their_last_point(tmp_path: Path):
    write_metrics(tmp_path, n_steps=30)
    curves = read_metrics(str(tmp_path / "metrics.jsonl"), max_points=10)
    steps, values = curves.series["train"]["loss/mel"]
    # 30 train records, at most 10 points: every 3rd record (steps 1, 4, ..., 28) and the last.
    assert steps == [1, 4, 7, 10, 13, 16, 19, 22, 25, 28, 30]
    assert values[0] == 2.0
    assert values[-1] == pytest.approx(2.0 / 30)
    assert curves.series["val"]["val/mel_distance"] == ([10, 20, 30], [0.1, 0.05, 1 / 30])
    assert dict(curves.n_records) == {"train": 30, "val": 3}
    assert (curves.last_step, curves.time_s, curves.n_skipped) == (30, 60.0, 1)


def test_malformed_lines_and_values_are_skipped(tmp_path: Path):
    lines = [
        json.dumps({"step": 1, "split": "train", "loss/mel": 1.0, "note": "text"}),
        json.dumps({"split": "train", "loss/mel": 2.0}),
        "[1, 2]",
        '{"step": 2, "split": "train", "loss/mel": NaN, "codebook/usage": 0.5}',
        "",
        '{"step": 3, "loss/mel": 0.5}',
    ]
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join(lines))
    curves = read_metrics(str(path), max_points=100)
    assert curves.series["train"]["loss/mel"] == ([1, 3], [1.0, 0.5])
    assert curves.series["train"]["codebook/usage"] == ([2], [0.5])
    assert curves.n_skipped == 4  # "note", the record without step, the list, the NaN


def test_metrics_are_grouped_by_prefix_in_page_order(tmp_path: Path):
    write_metrics(tmp_path)
    curves = read_metrics(str(tmp_path / "metrics.jsonl"), max_points=100)
    groups = {title: names for title, _, names in grouped(curves)}
    assert list(groups) == ["Losses", "Codebook", "Validation", "Optimisation"]
    assert groups["Losses"] == ["loss/mel", "loss/total_d", "loss/total_g"]
    assert groups["Codebook"] == ["codebook/dead", "codebook/perplexity", "codebook/usage"]
    assert groups["Optimisation"] == ["grad_norm/generator", "lr/generator", "speed/samples_per_s"]


def _context(tmp_path: Path, run_dir: str | None) -> ReportContext:
    assets = Assets(str(tmp_path / "report"))
    return ReportContext(str(tmp_path), ReportConfig(), assets, run_dir, "x.zarr", "default")


def test_missing_run_or_metrics_file_is_named(tmp_path: Path):
    with pytest.raises(MissingInputError, match="--run RUN_DIR"):
        build(_context(tmp_path, None))
    with pytest.raises(MissingInputError, match=r"empty-run/metrics.jsonl: no metrics file"):
        build(_context(tmp_path, str(tmp_path / "empty-run")))


def test_section_has_one_figure_per_group(tmp_path: Path):
    write_metrics(tmp_path / "run")
    section = build(_context(tmp_path, str(tmp_path / "run")))
    assert section.body.count("<img ") == 4
    assert "1 malformed lines" in section.body
    assert len(list((tmp_path / "report").glob("assets-*/img/*"))) == 4


def _append_val(run_dir: Path, step: int, collapsed: float) -> None:
    record = {
        "step": step,
        "split": "val",
        "val/codebook_usage": 0.02,
        "val/codebook_perplexity": 3.5,
        "val/codebook_collapsed": collapsed,
    }
    with (run_dir / "metrics.jsonl").open("a") as handle:
        handle.write(json.dumps(record) + "\n")


def test_a_collapsed_codebook_at_the_last_validation_is_a_warning(tmp_path: Path):
    run_dir = tmp_path / "run"
    write_metrics(run_dir)
    _append_val(run_dir, 31, collapsed=1.0)
    body = build(_context(tmp_path, str(run_dir))).body
    assert "Codebook collapse at the last validation (step 31): 2.0% of codes" in body
    assert "perplexity 3.5" in body
    _append_val(run_dir, 32, collapsed=0.0)
    assert "Codebook collapse" not in build(_context(tmp_path, str(run_dir))).body
