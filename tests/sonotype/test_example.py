"""The example deployment: deterministic bytes, realistic names and rates, ground truth."""

import datetime as dt
import re
import zoneinfo
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from sonotype.errors import OutputConflictError
from sonotype.example import ANNOTATIONS_FILE, GROUND_TRUTH_FILE, write_example
from tests.conftest import small_example_config

AUDIOMOTH_NAME = re.compile(r"^(\d{8})_(\d{6})\.WAV$")
SONGMETER_NAME = re.compile(r"^([A-Za-z0-9-]+)_(\d{8})_(\d{6})\.(wav|flac)$")
CAYENNE = zoneinfo.ZoneInfo("America/Cayenne")


def _audio_files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in (".wav", ".flac") and not p.name.startswith("._")
    )


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_gives_the_same_bytes(tmp_path: Path):
    config = small_example_config(file_s=4, years="[2024]")
    write_example(config, str(tmp_path / "a"), workers=2)
    write_example(config, str(tmp_path / "b"), workers=1)
    first, second = _tree_bytes(tmp_path / "a"), _tree_bytes(tmp_path / "b")
    assert first.keys() == second.keys()
    assert all(first[name] == second[name] for name in first)


def test_another_seed_gives_other_audio(tmp_path: Path):
    write_example(small_example_config(file_s=4, years="[2024]"), str(tmp_path / "a"))
    write_example(small_example_config(file_s=4, years="[2024]", seed=1), str(tmp_path / "b"))
    names = [p.relative_to(tmp_path / "a") for p in _audio_files(tmp_path / "a")]
    assert names == [p.relative_to(tmp_path / "b") for p in _audio_files(tmp_path / "b")]
    assert all(
        (tmp_path / "a" / n).read_bytes() != (tmp_path / "b" / n).read_bytes() for n in names
    )


def test_file_names_follow_recorder_conventions(small_example):
    root = Path(small_example.root)
    config = small_example_config()
    sessions = {dt.time.fromisoformat(s) for s in config.sessions}
    files = _audio_files(root)
    assert len(files) == len(config.sites) * len(config.years) * config.days_per_year * len(
        sessions
    )
    for path in files:
        site, year = path.parts[-3], int(path.parts[-2])
        if site == "PARACOU":
            match = AUDIOMOTH_NAME.match(path.name)
            assert match, path.name
            utc = dt.datetime.strptime("".join(match.groups()), "%Y%m%d%H%M%S").replace(
                tzinfo=dt.UTC
            )
            local = utc.astimezone(CAYENNE)
        else:
            match = SONGMETER_NAME.match(path.name)
            assert match, path.name
            assert match.group(1) == site
            local = dt.datetime.strptime(match.group(2) + match.group(3), "%Y%m%d%H%M%S")
        assert local.time().replace(tzinfo=None) in sessions
        assert local.year == year


def test_rates_channels_formats_and_durations(small_example):
    root = Path(small_example.root)
    config = small_example_config()
    expected = {site.name: site for site in config.sites}
    seen_formats = set()
    for path in _audio_files(root):
        info = sf.info(str(path))
        site = expected[path.parts[-3]]
        assert info.samplerate == site.sample_rate
        assert info.channels == site.channels
        assert info.format == site.format
        assert info.frames == config.file_s * site.sample_rate
        seen_formats.add((info.format, info.samplerate, info.channels))
    assert {"WAV", "FLAC"} <= {f for f, _, _ in seen_formats}
    assert {44100, 48000} <= {r for _, r, _ in seen_formats}
    assert 2 in {c for _, _, c in seen_formats}


def test_side_files_are_written(small_example):
    root = Path(small_example.root)
    assert list(root.glob("PARACOU/*/CONFIG.TXT"))
    assert list(root.glob("NOURAGUES/*/NOURAGUES_Summary.txt"))
    apple = list(root.rglob("._*"))
    assert len(apple) == 1
    assert apple[0].read_bytes()[:4] == b"\x00\x05\x16\x07"


def test_ground_truth_covers_every_second_with_a_diurnal_schedule(small_example):
    root = Path(small_example.root)
    config = small_example_config()
    table = pq.read_table(root / GROUND_TRUTH_FILE).to_pandas()
    per_file = table.groupby("path").size()
    assert sorted(per_file.index) == sorted(str(p.relative_to(root)) for p in _audio_files(root))
    assert (per_file == config.file_s).all()
    dawn = table[(table.local_hour > 5) & (table.local_hour < 7)]
    night = table[(table.local_hour > 22) | (table.local_hour < 4)]
    assert (dawn.dominant == "birds").mean() > 0.3
    assert (night.dominant == "frogs").mean() > 0.5
    assert (dawn.dominant == "birds").mean() > (night.dominant == "birds").mean()
    assert (night.dominant == "frogs").mean() > (dawn.dominant == "frogs").mean()


def test_annotations_csv_gives_the_ground_truth_of_every_second(small_example):
    truth = pq.read_table(Path(small_example.root) / GROUND_TRUTH_FILE).to_pandas()
    spans = pd.read_csv(Path(small_example.root) / ANNOTATIONS_FILE)
    assert list(spans.columns) == ["path", "start_s", "end_s", "label"]
    # runs of one source: consecutive spans of a file never share a label
    for _, file_spans in spans.groupby("path"):
        assert (file_spans["label"].to_numpy()[1:] != file_spans["label"].to_numpy()[:-1]).all()
    seconds = [
        (path, second, label)
        for path, start, end, label in spans.itertuples(index=False)
        for second in range(start, end)
    ]
    expected = list(truth[["path", "offset_s", "dominant"]].itertuples(index=False, name=None))
    assert sorted(seconds) == sorted(expected)


def test_dropout_is_digital_silence_and_labelled(small_example):
    root = Path(small_example.root)
    table = pq.read_table(root / GROUND_TRUTH_FILE).to_pandas()
    silent = table[table.dominant == "silence"]
    assert silent.path.nunique() == 1
    samples, rate = sf.read(str(root / silent.path.iloc[0]), dtype="int16", always_2d=True)
    for second in silent.offset_s:
        assert not samples[second * rate : (second + 1) * rate].any()
    assert np.abs(samples[:rate]).max() > 0


def test_rerun_reuses_and_other_settings_are_refused(tmp_path: Path):
    config = small_example_config(file_s=3, years="[2024]")
    assert not write_example(config, str(tmp_path)).reused
    assert write_example(config, str(tmp_path)).reused
    with pytest.raises(OutputConflictError, match="file_s"):
        write_example(small_example_config(file_s=4, years="[2024]"), str(tmp_path))
    assert not write_example(
        small_example_config(file_s=4, years="[2024]"), str(tmp_path), force=True
    ).reused
