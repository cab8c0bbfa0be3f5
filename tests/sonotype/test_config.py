"""Config loading: YAML + overrides → validated models; every problem named."""

from pathlib import Path

import pytest
from pydantic import Field

from sonotype.config import config_kinds, config_model, kind_of_path
from sonotype.config.base import StrictModel
from sonotype.config.example import ExampleConfig
from sonotype.config.load import (
    CONFIGS_DIR,
    apply_overrides,
    dump_config,
    load_config,
    resolve_preset,
    save_config,
)
from sonotype.config.reader import ReaderConfig
from sonotype.errors import ConfigError


class _Segment(StrictModel):
    length_s: float = Field(default=10.0, gt=0)
    hop_s: float | None = None


class _Demo(StrictModel):
    name: str = "x"
    segment: _Segment = _Segment()
    rates: list[int] = Field(default_factory=lambda: [1, 2])


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_defaults_file_and_overrides_apply_in_order(tmp_path: Path):
    path = _write(tmp_path, "name: from-file\nsegment:\n  length_s: 5\n")
    config = load_config(_Demo, path, ["segment.hop_s=2.5", "rates=[7, 8, 9]"])
    assert config.name == "from-file"
    assert config.segment.length_s == 5.0
    assert config.segment.hop_s == 2.5
    assert config.rates == [7, 8, 9]


def test_override_values_are_parsed_as_yaml():
    data = apply_overrides({}, ["a.b=3", "a.c=true", "d=[1, 2]", "e=text", "f="])
    assert data == {"a": {"b": 3, "c": True}, "d": [1, 2], "e": "text", "f": None}


def test_override_can_index_a_default_list():
    config = load_config(ExampleConfig, None, ["sites.1.sample_rate=48000"])
    assert config.sites[1].sample_rate == 48000
    assert config.sites[0] == ExampleConfig().sites[0]


def test_unknown_key_lists_the_valid_siblings(tmp_path: Path):
    path = _write(tmp_path, "segment:\n  lenght_s: 5\n")
    with pytest.raises(ConfigError) as error:
        load_config(_Demo, path)
    message = str(error.value)
    assert "segment.lenght_s: unknown setting" in message
    assert "hop_s, length_s" in message
    assert str(path) in message


def test_bad_value_names_field_value_and_expectation():
    with pytest.raises(ConfigError) as error:
        load_config(_Demo, None, ["segment.length_s=-1"])
    message = str(error.value)
    assert "segment.length_s: got -1; expected greater than 0" in message


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as error:
        load_config(_Demo, None, ["segment.length_s=0", "rates=nope", "bogus=1"])
    message = str(error.value)
    for field in ("segment.length_s", "rates", "bogus"):
        assert f"{field}:" in message


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("no-equals-sign", "expected KEY=VALUE"),
        ("name.inner=1", "name is a value, not a section"),
        ("rates.5=1", "rates.5 is not an item of the list"),
        ("a=[unclosed", "not valid YAML"),
    ],
)
def test_malformed_overrides_are_config_errors(override: str, fragment: str):
    with pytest.raises(ConfigError, match=fragment):
        load_config(_Demo, None, [override])


def test_yaml_that_is_not_a_mapping_is_refused(tmp_path: Path):
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(_Demo, _write(tmp_path, "- a\n- b\n"))


def test_missing_file_is_named(tmp_path: Path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(_Demo, tmp_path / "absent.yaml")


def test_unsafe_yaml_tags_are_refused(tmp_path: Path):
    path = _write(tmp_path, "name: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_Demo, path)


def test_configs_are_frozen():
    config = load_config(_Demo)
    with pytest.raises(Exception, match="frozen"):
        config.name = "changed"


def test_saved_config_loads_back_identically(tmp_path: Path):
    config = load_config(ExampleConfig, None, ["file_s=33", "years=[2030]"])
    target = tmp_path / "saved.yaml"
    save_config(config, target, "sonotype example")
    assert target.read_text().startswith("# resolved config written by `sonotype example`")
    assert load_config(ExampleConfig, target) == config
    assert "file_s: 33" in dump_config(config)


def test_every_shipped_config_validates():
    files = sorted(CONFIGS_DIR.rglob("*.yaml"))
    assert files, "configs/ holds no YAML"
    for path in files:
        kind = kind_of_path(path)
        assert kind in config_kinds(), f"{path} has no known kind"
        load_config(config_model(kind), path)


def test_preset_resolution(tmp_path: Path):
    assert resolve_preset("example", "small") == CONFIGS_DIR / "example" / "small.yaml"
    own = _write(tmp_path, "seed: 1\n")
    assert resolve_preset("example", str(own)) == own
    with pytest.raises(ConfigError, match="'huge' not found"):
        resolve_preset("example", "huge")


def test_example_config_cross_field_rules():
    with pytest.raises(ConfigError, match="not a date in 2023"):
        load_config(ExampleConfig, None, ["first_day=02-29", "years=[2024, 2023]"])
    with pytest.raises(ConfigError, match="unique"):
        load_config(ExampleConfig, None, ["sites.1.name=PARACOU"])
    with pytest.raises(ConfigError, match="HH:MM"):
        load_config(ExampleConfig, None, ["sessions=['25:99']"])


def test_reader_crop_length_in_samples_and_hop_divisibility():
    assert ReaderConfig().crop_length(24000, hop_samples=320) == 72000
    assert ReaderConfig(crop_samples=4800).crop_length(24000) == 4800
    with pytest.raises(ConfigError, match=r"not a multiple of the model hop 600.*e\.g\. 1200"):
        ReaderConfig(crop_s=0.07).crop_length(24000, hop_samples=600)
    with pytest.raises(ConfigError, match="not a whole number"):
        ReaderConfig(crop_s=0.33333).crop_length(24000)


def test_reader_config_cross_field_rules_and_times():
    with pytest.raises(ConfigError, match=r"gain: .*min_dbfs \(-1.0\) must not exceed max_dbfs"):
        load_config(ReaderConfig, overrides=["gain.min_dbfs=-1", "gain.max_dbfs=-6"])
    with pytest.raises(ConfigError, match=r"filters\.start_time"):
        load_config(ReaderConfig, overrides=["filters.start_time=2024-03-15T06:00:00"])
    config = load_config(ReaderConfig, overrides=["filters.start_time=2024-03-15T06:00:00-03:00"])
    assert config.filters.start_time.isoformat() == "2024-03-15T09:00:00+00:00"
