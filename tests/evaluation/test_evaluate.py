"""`sonotype evaluate`: scores a clustering and the yardstick over the same labelled windows."""

import pandas as pd
import pytest

from analysis import cluster_features
from analysis.report.quality import verdict
from evaluation import EvaluationSettings, evaluate
from evaluation.windows import dominant_labels
from sonotype.cli.main import main
from sonotype.config.cluster import ClusterConfig
from tests.evaluation.outputs import N_RECORDINGS, SEGMENT_S, SEGMENTS_PER_RECORDING, write_outputs

N_WINDOWS = N_RECORDINGS * SEGMENTS_PER_RECORDING * SEGMENT_S


def _by_method(scores: pd.DataFrame, unit: str) -> dict[str, pd.Series]:
    rows = scores[scores["unit"] == unit]
    return {
        method.split(" (")[0]: row
        for method, (_, row) in zip(rows["method"], rows.iterrows(), strict=True)
    }


def test_sonotypes_that_follow_the_classes_score_like_the_yardstick(tmp_path):
    out, annotations = write_outputs(tmp_path)
    result = evaluate(out, ["default"], [annotations])[0]
    window = _by_method(result.scores, "window")
    assert set(window) == {"sonotypes", "log-mel mean", "spectral shape"}
    assert {int(row["n_windows"]) for row in window.values()} == {N_WINDOWS}
    for row in window.values():
        assert row["nmi"] > 0.9
        assert row["ari"] > 0.9
        assert row["purity"] > 0.95
        assert row["probe"] > 0.9
    segment = result.scores[result.scores["unit"] == "segment"]
    assert set(segment["n_windows"]) == {N_RECORDINGS * SEGMENTS_PER_RECORDING}
    # every scored window carries the label of its second
    assert len(result.windows) == N_WINDOWS
    assert set(result.windows["label"]) == {"low", "high"}


def test_sonotypes_from_features_without_information_score_near_zero(tmp_path):
    out, annotations = write_outputs(tmp_path, informative=False)
    window = _by_method(evaluate(out, ["default"], [annotations])[0].scores, "window")
    assert window["sonotypes"]["nmi"] < 0.3
    assert window["sonotypes"]["probe"] < 0.8
    # the yardstick reads the audio, not the store, so it still finds the classes
    assert window["spectral shape"]["nmi"] > 0.9


def test_the_cli_prints_the_table_and_writes_scores_windows_and_figure(tmp_path, capsys):
    out, annotations = write_outputs(tmp_path)
    assert main(["evaluate", out, "--annotations", annotations, "-q"]) == 0
    printed = capsys.readouterr().out
    assert "spectral shape" in printed
    assert "sonotypes (default)" in printed
    directory = tmp_path / "out" / "clusters" / "default" / "evaluation"
    scores = pd.read_csv(directory / "scores.csv")
    assert len(scores) == 6
    assert (directory / "quality.png").read_bytes()[:4] == b"\x89PNG"
    assert len(pd.read_parquet(directory / "windows.parquet")) == N_WINDOWS


def test_a_clustering_that_does_not_exist_is_a_clear_error(tmp_path, capsys):
    out, annotations = write_outputs(tmp_path)
    assert main(["evaluate", out, "--annotations", annotations, "--name", "nope", "-q"]) == 2
    assert "nope" in capsys.readouterr().err


def test_longer_windows_count_fewer_windows(tmp_path):
    out, annotations = write_outputs(tmp_path)
    result = evaluate(
        out, ["default"], [annotations], EvaluationSettings(window_s=2.0, min_overlap=0.5)
    )[0]
    # a 2 s window covers two seconds of possibly different classes: ties go to either
    assert len(result.windows) == N_RECORDINGS * SEGMENTS_PER_RECORDING


@pytest.mark.parametrize(
    ("min_overlap", "fill", "expected"),
    [
        (0.5, None, ["a", "b", None]),
        (0.7, None, [None, "b", None]),
        (0.5, "none", ["a", "b", "none"]),
    ],
)
def test_a_window_takes_the_label_covering_most_of_it(min_overlap, fill, expected):
    windows = pd.DataFrame(
        {"recording_id": ["r"] * 3, "start_s": [0.0, 1.0, 2.0], "end_s": [1.0, 2.0, 3.0]}
    )
    annotations = pd.DataFrame(
        {
            "recording_id": ["r", "r", "r", "other"],
            "start_s": [0.0, 0.6, 1.0, 2.0],
            "end_s": [0.6, 1.0, 2.0, 3.0],
            "label": ["a", "b", "b", "a"],
        }
    )
    labels = dominant_labels(windows, annotations, min_overlap, fill)
    assert [None if pd.isna(v) else v for v in labels] == expected


def test_overlapping_spans_of_one_label_add_up():
    windows = pd.DataFrame({"recording_id": ["r"], "start_s": [0.0], "end_s": [1.0]})
    annotations = pd.DataFrame(
        {
            "recording_id": ["r"] * 3,
            "start_s": [0.0, 0.3, 0.0],
            "end_s": [0.3, 0.6, 0.45],
            "label": ["a", "a", "b"],
        }
    )
    assert dominant_labels(windows, annotations, 0.5).tolist() == ["a"]


def test_the_report_shows_the_evaluation_and_says_whether_sonotypes_trail(tmp_path):
    out, annotations = write_outputs(tmp_path, informative=False)
    assert main(["report", out, "-q"]) == 0
    page = (tmp_path / "out" / "report" / "index.html").read_text()
    assert "No evaluation of clustering" in page
    evaluate(out, ["default"], [annotations])[0]
    assert main(["report", out, "-q"]) == 0
    page = (tmp_path / "out" / "report" / "index.html").read_text()
    quality = page[page.index('id="quality"') :]
    assert "spectral shape" in quality
    assert "the sonotypes trail the stronger yardstick" in quality
    assert len(list((tmp_path / "out" / "report").glob("assets-*/img/quality.png"))) == 1


def test_several_clusterings_are_scored_on_the_same_windows_and_yardstick(tmp_path):
    out, annotations = write_outputs(tmp_path)
    config = ClusterConfig(k=3, level="segment", normalise="none", k_selection=[])
    cluster_features(f"{out}/features.zarr", name="seg", config=config, workers=1)
    frame, segment = evaluate(out, ["default", "seg"], [annotations])
    assert frame.scores["k"].iloc[0] == 2
    assert segment.scores["k"].iloc[0] == 3
    assert frame.windows[["recording_id", "start_s"]].equals(
        segment.windows[["recording_id", "start_s"]]
    )
    # the probes do not depend on the clustering; the yardstick follows each one's k
    assert frame.scores["probe"].tolist() == segment.scores["probe"].tolist()
    assert (tmp_path / "out" / "clusters" / "seg" / "evaluation" / "scores.parquet").is_file()


def test_the_verdict_says_which_score_passes_and_which_trails():
    def scores(nmi: float, ari: float) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {"unit": "window", "method": "sonotypes (default)", "nmi": nmi, "ari": ari},
                {"unit": "window", "method": "spectral shape", "nmi": 0.5, "ari": 0.33},
                {"unit": "window", "method": "log-mel mean", "nmi": 0.42, "ari": 0.26},
            ]
        )

    assert "reach or pass the stronger yardstick (spectral shape)" in verdict(
        scores(0.6, 0.4), "window"
    )
    mixed = verdict(scores(0.40, 0.39), "window")
    assert "trail the stronger yardstick (spectral shape) on NMI and pass it on ARI" in mixed
    assert "separates these annotations better" in verdict(scores(0.3, 0.2), "window")
