"""Settings: the shipped YAML, which settings shape an output, and the saved config guard."""

from pathlib import Path

import pytest

from ingest.saved_config import check_and_save, differing_settings, saved_config_url
from sonotype.config.ingest import IngestConfig
from sonotype.config.load import CONFIGS_DIR, load_config
from sonotype.errors import OutputConflictError


def test_the_shipped_yaml_spells_out_the_schema_defaults():
    assert load_config(IngestConfig, CONFIGS_DIR / "ingest.yaml") == IngestConfig()


def test_only_output_shaping_settings_differ():
    base = IngestConfig()
    runtime = load_config(IngestConfig, None, ["job.block_s=1", "job.retries=0"])
    assert differing_settings(base, runtime) == []
    shaped = load_config(
        IngestConfig,
        None,
        ["channels.policy=each", "metadata.timezone=UTC", "job.max_task_s=60"],
    )
    assert differing_settings(base, shaped) == [
        "channels.policy",
        "job.max_task_s",
        "metadata.timezone",
    ]


def test_the_config_is_saved_and_a_conflict_named(tmp_path: Path):
    out = str(tmp_path)
    check_and_save(out, IngestConfig(), force=False)
    saved = Path(saved_config_url(out))
    assert saved.read_text().startswith("# resolved config written by `sonotype ingest`")
    assert load_config(IngestConfig, saved) == IngestConfig()
    other = load_config(IngestConfig, None, ["segment.hop_s=5"])
    with pytest.raises(OutputConflictError, match=r"different settings \(segment\.hop_s\)"):
        check_and_save(out, other, force=False)
    check_and_save(out, other, force=True)
    assert load_config(IngestConfig, saved) == other


def test_a_hop_longer_than_the_segment_is_refused():
    from sonotype.errors import ConfigError

    with pytest.raises(ConfigError, match="hop_s"):
        load_config(IngestConfig, None, ["segment.hop_s=20"])
