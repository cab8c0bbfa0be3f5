"""Metadata from paths: sites, start times of both recorder conventions and custom rules, ids."""

import datetime as dt

import pytest

from ingest.metadata import parse_site, parse_start_time, read_path_metadata, recording_id
from sonotype.config.ingest import IngestConfig, MetadataConfig, TimeRule
from sonotype.config.load import load_config
from sonotype.contracts import is_valid_key, segment_key
from sonotype.errors import ConfigError

DEFAULTS = MetadataConfig()


def _utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=dt.UTC)


def test_audiomoth_names_are_utc_and_the_site_is_the_folder_past_the_year():
    meta = read_path_metadata("/data/PARACOU/2024/20240315_084500.WAV", DEFAULTS)
    assert meta.site == "PARACOU"
    assert meta.start_time == _utc(2024, 3, 15, 8, 45)
    assert meta.time_source == "audiomoth"


def test_song_meter_names_are_local_time_converted_to_utc():
    # America/Cayenne is UTC-3 all year.
    meta = read_path_metadata("/data/NOURAGUES/2024/NOURAGUES_20240315_054500.wav", DEFAULTS)
    assert meta.site == "NOURAGUES"
    assert meta.start_time == _utc(2024, 3, 15, 8, 45)
    assert meta.time_source == "songmeter"


def test_song_meter_prefix_with_hyphens_and_underscores():
    path = "s3://bucket/archive/SAUT-LAVILETTE_20241231_230000.flac"
    assert parse_site(path, DEFAULTS.site_rules) == "SAUT-LAVILETTE"
    path = "/x/2025/MY_SITE_20250101_000000_000.wav"
    assert parse_site(path, DEFAULTS.site_rules) == "MY_SITE"
    assert parse_start_time(path, DEFAULTS.time_rules, "UTC") == (
        _utc(2025, 1, 1),
        "songmeter",
    )


def test_the_recorder_zone_is_configurable_with_daylight_saving():
    config = MetadataConfig(timezone="Europe/Paris")
    summer = read_path_metadata("/d/SITE_20240701_120000.wav", config)
    winter = read_path_metadata("/d/SITE_20240115_120000.wav", config)
    assert summer.start_time == _utc(2024, 7, 1, 10)
    assert winter.start_time == _utc(2024, 1, 15, 11)
    # AudioMoth names stay UTC whatever the recorders' zone.
    assert read_path_metadata("/d/S/20240701_120000.WAV", config).start_time == _utc(2024, 7, 1, 12)


def test_a_custom_regex_rule_with_its_own_format_and_zone():
    rule = TimeRule(
        name="dashes",
        pattern=r"rec-(?P<time>\d{4}-\d{2}-\d{2}T\d{2}h\d{2})",
        format="%Y-%m-%dT%Hh%M",
        timezone="Asia/Tokyo",
    )
    start = parse_start_time("/x/rec-2024-03-15T09h30.flac", [rule], "UTC")
    assert start == (_utc(2024, 3, 15, 0, 30), "dashes")


def test_no_matching_rule_leaves_time_unknown_and_site_default():
    meta = read_path_metadata("recording.wav", DEFAULTS)
    assert (meta.site, meta.start_time, meta.time_source) == ("unknown", None, None)


def test_a_match_that_is_not_a_date_is_skipped():
    # Month 13: the audiomoth rule matches the shape but not the calendar.
    assert parse_start_time("/d/S/20241315_120000.WAV", DEFAULTS.time_rules, "UTC") is None


def test_rules_without_their_named_group_are_config_errors():
    with pytest.raises(ConfigError, match="named group"):
        load_config(IngestConfig, None, ["metadata.time_rules=[{name: x, pattern: 'abc'}]"])
    with pytest.raises(ConfigError, match="IANA time zone"):
        load_config(IngestConfig, None, ["metadata.timezone=Mars/Olympus"])


def test_recording_ids_are_stable_key_safe_and_tell_paths_apart():
    start = _utc(2024, 3, 15, 8, 45)
    first = recording_id("SAUT-LAVILETTE", start, "SAUT-LAVILETTE/2024/x.flac")
    assert first == recording_id("SAUT-LAVILETTE", start, "SAUT-LAVILETTE/2024/x.flac")
    assert first.startswith("SAUT-LAVILETTE_20240315T084500Z_")
    assert first != recording_id("SAUT-LAVILETTE", start, "copy/SAUT-LAVILETTE/2024/x.flac")
    odd = recording_id("site with spaces.&", None, "a.wav")
    assert odd.startswith("site-with-spaces_notime_")
    for rid in (first, odd):
        assert is_valid_key(segment_key(rid, 1, 7))
