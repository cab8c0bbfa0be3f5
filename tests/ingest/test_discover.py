"""Discovery: folders, globs and fsspec URLs; side files recorded with a reason; fingerprints."""

from pathlib import Path

import fsspec
import pytest

from ingest.discover import discover, fingerprint, side_file_reason
from sonotype.config.ingest import DiscoverConfig
from sonotype.errors import SonotypeError

CONFIG = DiscoverConfig()


def _tree(root: Path) -> None:
    for relative, data in {
        "PARACOU/2024/20240315_084500.WAV": b"a",
        "PARACOU/2024/CONFIG.TXT": b"b",
        "PARACOU/2024/._20240315_084500.WAV": b"c",
        "NOURAGUES/2025/NOURAGUES_20250315_054500.flac": b"dd",
        "NOURAGUES/2025/.DS_Store": b"e",
        "notes": b"f",
    }.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_a_folder_is_walked_recursively_with_paths_relative_to_it(tmp_path: Path):
    _tree(tmp_path)
    found = {f.relative: f for f in discover([str(tmp_path)], CONFIG)}
    assert set(found) == {
        "PARACOU/2024/20240315_084500.WAV",
        "PARACOU/2024/CONFIG.TXT",
        "PARACOU/2024/._20240315_084500.WAV",
        "NOURAGUES/2025/NOURAGUES_20250315_054500.flac",
        "NOURAGUES/2025/.DS_Store",
        "notes",
    }
    assert found["NOURAGUES/2025/NOURAGUES_20250315_054500.flac"].size == 2
    assert found["PARACOU/2024/20240315_084500.WAV"].url == str(
        tmp_path / "PARACOU/2024/20240315_084500.WAV"
    )


def test_side_files_are_found_with_the_reason_they_are_not_read(tmp_path: Path):
    _tree(tmp_path)
    reasons = {f.relative: f.ignore_reason for f in discover([str(tmp_path)], CONFIG)}
    assert reasons["PARACOU/2024/20240315_084500.WAV"] is None
    assert reasons["NOURAGUES/2025/NOURAGUES_20250315_054500.flac"] is None
    assert reasons["PARACOU/2024/CONFIG.TXT"] == (
        "side file: .TXT is not an audio extension (wav, flac, ogg, mp3, aif, aiff)"
    )
    assert reasons["PARACOU/2024/._20240315_084500.WAV"] == (
        "side file: its name matches the ignore pattern '._*'"
    )
    assert reasons["NOURAGUES/2025/.DS_Store"] == (
        "side file: its name matches the ignore pattern '.*'"
    )
    assert reasons["notes"].startswith("side file: no file extension")


def test_audio_extensions_are_configurable_and_case_insensitive():
    config = DiscoverConfig(audio_extensions=[".WAV"])
    assert side_file_reason("X.wav", config) is None
    assert side_file_reason("X.flac", config) is not None


def test_a_glob_is_relative_to_its_folder_before_the_first_wildcard(tmp_path: Path):
    _tree(tmp_path)
    found = discover([str(tmp_path / "*" / "2024")], CONFIG)
    assert sorted(f.relative for f in found) == [
        "PARACOU/2024/._20240315_084500.WAV",
        "PARACOU/2024/20240315_084500.WAV",
        "PARACOU/2024/CONFIG.TXT",
    ]
    wavs = discover([str(tmp_path / "**" / "*.WAV")], CONFIG)
    assert {f.relative for f in wavs if f.ignore_reason is None} == {
        "PARACOU/2024/20240315_084500.WAV"
    }


def test_files_reached_twice_are_listed_once(tmp_path: Path):
    _tree(tmp_path)
    found = discover([str(tmp_path), str(tmp_path / "PARACOU")], CONFIG)
    urls = [f.url for f in found]
    assert len(urls) == len(set(urls)) == 6
    # The first input that reached a file gives its relative path.
    assert "PARACOU/2024/CONFIG.TXT" in {f.relative for f in found}


def test_fsspec_urls_keep_their_protocol():
    fs = fsspec.filesystem("memory")
    fs.pipe("/survey/SITE-A/2024/20240101_000000.wav", b"abc")
    fs.pipe("/survey/SITE-A/2024/LOG.TXT", b"x")
    try:
        found = discover(["memory://survey"], CONFIG)
        wav, log = "SITE-A/2024/20240101_000000.wav", "SITE-A/2024/LOG.TXT"
        assert [(f.url, f.relative, f.size) for f in found] == [
            (f"memory:///survey/{wav}", wav, 3),
            (f"memory:///survey/{log}", log, 1),
        ]
        globbed = discover(["memory://survey/*/2024/*.wav"], CONFIG)
        assert [f.relative for f in globbed] == ["SITE-A/2024/20240101_000000.wav"]
    finally:
        fs.rm("/survey", recursive=True)


@pytest.mark.parametrize("name", ["missing-folder", "missing-*.wav"])
def test_inputs_that_find_nothing_are_errors_naming_them(tmp_path: Path, name: str):
    with pytest.raises(SonotypeError, match=name.replace("*", r"\*")):
        discover([str(tmp_path / name)], CONFIG)


def test_fingerprint_changes_with_content_and_length(tmp_path: Path):
    path = tmp_path / "a.wav"
    path.write_bytes(bytes(300_000))
    first = fingerprint(str(path), 300_000)
    assert first == fingerprint(str(path), 300_000)
    assert first.startswith("300000:")
    path.write_bytes(bytes(299_999) + b"\x01")
    assert fingerprint(str(path), 300_000) != first
    path.write_bytes(bytes(300_001))
    assert fingerprint(str(path), 300_001) != first


def test_a_file_url_reads_like_the_local_path(tmp_path: Path):
    _tree(tmp_path)
    by_url = discover([f"file://{tmp_path}"], CONFIG)
    assert by_url == discover([str(tmp_path)], CONFIG)
