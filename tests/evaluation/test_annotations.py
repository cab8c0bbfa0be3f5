"""Annotations from CSV and Raven tables resolve to catalog recordings and file offsets."""

import logging

import pandas as pd
import pytest

from evaluation.annotations import AnnotationError, read_annotations

RECORDINGS = pd.DataFrame(
    {
        "recording_id": ["rec-a", "rec-b"],
        "path": ["/data/SITE_A/2024/A_20240315_054500.wav", "/data/SITE_B/2024/B_0001.flac"],
        "start_time": pd.to_datetime(["2024-03-15T08:45:00Z", None], utc=True),
    }
)


def _write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_csv_paths_match_by_their_trailing_folders_and_ids_directly(tmp_path):
    source = _write(
        tmp_path,
        "a.csv",
        "path,start_s,end_s,label\n"
        "SITE_A/2024/A_20240315_054500.wav,3,4.5,frog\n"
        "SITE_B/2024/B_0001.flac,0,2,rain\n",
    )
    by_id = _write(tmp_path, "b.csv", "recording_id,start_s,end_s,label\nrec-b,5,6,bird\n")
    table = read_annotations([source, by_id], RECORDINGS)
    assert table.to_dict("records") == [
        {"recording_id": "rec-a", "start_s": 3.0, "end_s": 4.5, "label": "frog"},
        {"recording_id": "rec-b", "start_s": 0.0, "end_s": 2.0, "label": "rain"},
        {"recording_id": "rec-b", "start_s": 5.0, "end_s": 6.0, "label": "bird"},
    ]


def test_utc_times_become_offsets_from_the_recording_start(tmp_path):
    source = _write(
        tmp_path,
        "utc.csv",
        "recording_id,begin_time,end_time,label\n"
        "rec-a,2024-03-15T08:45:10Z,2024-03-15T08:45:12.5Z,insects\n",
    )
    row = read_annotations([source], RECORDINGS).iloc[0]
    assert (row["start_s"], row["end_s"]) == (10.0, 12.5)


def test_utc_times_for_a_recording_without_start_time_are_refused(tmp_path):
    source = _write(
        tmp_path,
        "utc.csv",
        "recording_id,begin_time,end_time,label\nrec-b,2024-03-15T08:45:10Z,"
        "2024-03-15T08:45:12Z,rain\n",
    )
    with pytest.raises(AnnotationError, match="without a known start time"):
        read_annotations([source], RECORDINGS)


def test_raven_tables_find_their_recording_by_table_name_or_begin_file(tmp_path):
    named = _write(
        tmp_path,
        "A_20240315_054500.Table.1.selections.txt",
        "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tSpecies\n"
        "1\tSpectrogram 1\t1\t1.25\t2.0\tHyla\n",
    )
    with_file = _write(
        tmp_path,
        "any.txt",
        "Selection\tBegin Time (s)\tEnd Time (s)\tBegin File\tSpecies\n"
        "1\t7\t8\tB_0001.flac\tTinamus\n",
    )
    table = read_annotations([named, with_file], RECORDINGS, raven_label="Species")
    assert table[["recording_id", "start_s", "end_s", "label"]].values.tolist() == [
        ["rec-a", 1.25, 2.0, "Hyla"],
        ["rec-b", 7.0, 8.0, "Tinamus"],
    ]


def test_unknown_recordings_are_skipped_with_a_warning_naming_them(tmp_path, caplog):
    source = _write(
        tmp_path,
        "a.csv",
        "path,start_s,end_s,label\nelsewhere/X.wav,0,1,frog\nSITE_B/2024/B_0001.flac,0,1,rain\n",
    )
    with caplog.at_level(logging.WARNING):
        table = read_annotations([source], RECORDINGS)
    assert table["recording_id"].tolist() == ["rec-b"]
    assert "elsewhere/X.wav" in caplog.text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("path,start_s,end_s\nB_0001.flac,0,1\n", "missing column.*label"),
        ("start_s,end_s,label\n0,1,rain\n", "needs a `path` or a `recording_id`"),
        ("recording_id,start_s,end_s,label\nrec-a,zero,1,rain\n", "row 1: start_s must be"),
        ("recording_id,start_s,end_s,label\nrec-a,3,1,rain\n", "row 1: the span ends"),
        ("recording_id,from,to,label\nrec-a,0,1,rain\n", "needs `start_s`/`end_s`"),
    ],
)
def test_malformed_csv_names_the_file_and_what_is_wrong(tmp_path, text, message):
    source = _write(tmp_path, "bad.csv", text)
    with pytest.raises(AnnotationError, match=message) as error:
        read_annotations([source], RECORDINGS)
    assert "bad.csv" in str(error.value)


def test_a_raven_table_without_the_label_column_is_refused(tmp_path):
    source = _write(
        tmp_path, "A_20240315_054500.txt", "Begin Time (s)\tEnd Time (s)\tSpecies\n0\t1\tx\n"
    )
    with pytest.raises(AnnotationError, match=r"missing column.*Annotation"):
        read_annotations([source], RECORDINGS)
