"""Shards with hostile member names: read safely, never extracted, never a way out."""

import io
import tarfile
from pathlib import Path

import pytest

from shards.reader import ShardLoader
from shards.verify import verify_shards
from sonotype import audio
from sonotype.config.reader import ReaderConfig
from sonotype.contracts import OutputLayout
from tests.shards.fake_ingest import ramp
from tests.training.encode_helpers import save_tiny_tokenizer, snapshot, write_out
from training import encode_features

pytestmark = pytest.mark.faults


def _add_hostile_members(shard: Path, escape: Path) -> None:
    """Append members named to escape the output, an absolute path and a symlink."""
    flac = audio.encode_flac(ramp(0, 24000), 24000)
    with tarfile.open(shard, "a") as archive:
        for name, data in (
            (f"../../{escape.name}", flac),
            (str(escape.with_suffix(".json")), b"{}"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("link.flac")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        archive.addfile(link)


def test_encode_reads_only_catalogued_samples_and_verify_names_the_rest(tmp_path: Path):
    checkpoint = save_tiny_tokenizer(tmp_path / "tokenizer.pt")
    clean = write_out(tmp_path / "clean", (3, 2))
    encode_features(checkpoint, clean.out, workers=0)
    fake = write_out(tmp_path / "out", (3, 2))
    escape = tmp_path / "escaped.flac"
    _add_hostile_members(fake.shard_path(fake.shards[1]), escape)

    summary = encode_features(checkpoint, fake.out, workers=0)
    assert (summary.n_shards_encoded, summary.failed) == (2, {})
    snapshot(OutputLayout(fake.out).features).assert_equal(
        snapshot(OutputLayout(clean.out).features)
    )
    assert not escape.exists()
    assert not escape.with_suffix(".json").exists()
    problems = verify_shards(fake.out).problems
    assert any("link" in problem for problem in problems)
    assert any("escaped" in problem for problem in problems)


def test_the_training_reader_reads_only_catalogued_samples(tmp_path: Path):
    fake = write_out(tmp_path / "out", (3, 2))
    escape = tmp_path / "escaped.flac"
    _add_hostile_members(fake.shard_path(fake.shards[1]), escape)
    config = ReaderConfig.model_validate(
        {"crop_s": 0.25, "batch_size": 2, "shuffle_buffer": 2, "num_workers": 0}
    )
    for loader in (
        ShardLoader.from_catalog(fake.out, config, mode="eval"),
        # a scan of the shards, without the catalog, meets the hostile members too
        ShardLoader.from_urls(f"{OutputLayout(fake.out).shards_dir}/*.tar", config, mode="eval"),
    ):
        keys = sorted(key for batch in loader for key in batch.keys)
        assert keys == sorted(fake.all_keys)
    assert not escape.exists()
    assert not escape.with_suffix(".json").exists()
