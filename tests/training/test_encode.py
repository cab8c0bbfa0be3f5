"""encode_features in this process (the single-device path): contents, order, resume, refusals."""

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

import analysis.segment_table
import training.encode
import training.tokenizer
from analysis.store import open_store
from sonotype.config.encode import EncodeConfig
from sonotype.config.load import read_yaml
from sonotype.contracts import (
    EMBEDDINGS,
    LOUDNESS,
    POOLED,
    TOKENS,
    OutputLayout,
    features_config_path,
)
from sonotype.contracts import SegmentColumn as Col
from sonotype.errors import CheckpointMismatchError, OutputConflictError, SonotypeError
from tests.shards.fake_ingest import ramp
from tests.training.conftest import preset
from tests.training.encode_helpers import (
    SAMPLE_RATE,
    catalog_without,
    cut_shard,
    encode_like_a_run,
    expected_features,
    full_catalog,
    garble_sample,
    record_encoded_shards,
    save_tiny_tokenizer,
    snapshot,
    utc,
    write_out,
)
from training import encode_features
from training.encode_store import checkpoint_sha256

# Shards of 3, 2 and 4 one-second segments; segments 2 and 6 are a recording's shorter
# tail (0.37 s = 8880 samples → 15 frames; 0.5 s → 20 frames; 1 s → 40 frames).
SIZES = (3, 2, 4)
TAILS = {2: 0.37, 6: 0.5}
FRAMES = [40, 40, 15, 40, 40, 40, 20, 40, 40]
FLOAT16_RTOL = 2.0**-11
"""float16 keeps 10 mantissa bits: rounding moves a value by at most 2⁻¹¹ of itself."""
BATCH_ATOL = 1e-6
"""Batched and chunked encoder runs sum in another order: measured ≤ 6e-8 on these models."""


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_tokenizer(tmp_path_factory.mktemp("tokenizer") / "tokenizer.pt")


@pytest.fixture
def fake(tmp_path: Path):
    return write_out(tmp_path / "out", SIZES, durations=TAILS)


def _store(fake) -> str:
    return OutputLayout(fake.out).features


def test_each_segment_is_stored_as_the_tokenizer_encodes_it_alone(checkpoint, fake):
    # Batches of 3 mix lengths: [1 s, 1 s, tail], [1 s, 0.5 s, 1 s]: grouped by length.
    config = EncodeConfig(batch_size=3)
    summary = encode_features(checkpoint, fake.out, config=config, workers=0)
    expected = expected_features(checkpoint, fake, config)

    store = open_store(_store(fake))
    table = store.read_segments()
    assert table.column("key").to_pylist() == fake.all_keys  # shards by name, tar order
    assert table.column("n_frames").to_pylist() == FRAMES
    assert table.column("frame_start").to_pylist() == np.cumsum([0, *FRAMES[:-1]]).tolist()
    assert (store.n_frames, store.n_segments) == (sum(FRAMES), 9)
    tokens = store.read(TOKENS, 0, store.n_frames)
    embeddings = store.read(EMBEDDINGS, 0, store.n_frames)
    pooled = store.read(POOLED, 0, store.n_segments)
    assert (tokens.dtype, embeddings.dtype, pooled.dtype) == (np.int16, np.float16, np.float32)
    assert embeddings.shape == (sum(FRAMES), 64)
    starts = table.column("frame_start").to_pylist()
    for i, (start, n) in enumerate(zip(starts, FRAMES, strict=True)):
        expected.assert_tokens(i, tokens[start : start + n])
        np.testing.assert_allclose(
            embeddings[start : start + n].astype(np.float32),
            expected.embeddings[i],
            rtol=FLOAT16_RTOL,
            atol=BATCH_ATOL,
        )
        np.testing.assert_allclose(
            pooled[i], expected.embeddings[i].mean(axis=0), rtol=1e-5, atol=BATCH_ATOL
        )
    assert (summary.n_shards_encoded, summary.n_segments, summary.n_frames) == (3, 9, 315)
    assert summary.audio_s == pytest.approx(7 + 0.37 + 0.5)
    assert not summary.skipped
    assert not summary.failed


def test_reading_ahead_in_a_thread_changes_nothing(checkpoint, fake, tmp_path):
    encode_features(checkpoint, fake.out, config=EncodeConfig(read_ahead=3), workers=0)
    inline = write_out(tmp_path / "inline", SIZES, durations=TAILS)
    encode_features(checkpoint, inline.out, config=EncodeConfig(read_ahead=0), workers=0)
    snapshot(_store(fake)).assert_equal(snapshot(_store(inline)))


def test_the_table_gives_every_frame_a_time_and_the_attributes_name_the_model(checkpoint, fake):
    encode_features(checkpoint, fake.out, workers=0)
    store = open_store(_store(fake))
    table = store.read_segments().to_pylist()
    assert [row[Col.SHARD] for row in table] == [s for s in fake.shards for _ in fake.keys[s]]
    for row in table:
        source = fake.row(row[Col.KEY])
        assert row[Col.START_TIME] == utc(source[Col.START_TIME])
        assert (row[Col.SITE], row[Col.RECORDING_ID]) == (source[Col.SITE], source["recording_id"])
        assert row[Col.OFFSET_S] == source[Col.OFFSET_S]
        n_samples = round(source[Col.DURATION_S] * SAMPLE_RATE)
        assert row[Col.DURATION_S] == n_samples / SAMPLE_RATE
        # Frame j covers [start + j / rate, start + (j + 1) / rate): the last one holds the end.
        last = row[Col.START_TIME] + dt.timedelta(seconds=(row["n_frames"] - 1) / 40)
        end = row[Col.START_TIME] + dt.timedelta(seconds=row[Col.DURATION_S])
        assert last < end <= last + dt.timedelta(seconds=1 / 40)
    assert store.frame_rate == 40.0
    assert (store.sample_rate, store.codebook_size, store.dim) == (SAMPLE_RATE, 512, 64)
    assert store.checkpoint_sha256 == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert store.model_config == preset("tiny").model_dump(mode="json")
    assert store.shards == fake.shards
    saved = read_yaml(features_config_path(_store(fake)))
    assert saved == EncodeConfig().model_dump(mode="json")


def test_long_segments_are_encoded_in_exact_chunks(checkpoint, tmp_path, monkeypatch):
    fake = write_out(tmp_path / "out", (2,), durations={0: 3.0})  # 120 frames, then 40
    chunked_calls = []
    original = training.tokenizer.encode_chunked

    def recording(generator, wav, chunk_frames):
        chunked_calls.append((wav.shape[-1], chunk_frames))
        return original(generator, wav, chunk_frames)

    monkeypatch.setattr(training.tokenizer, "encode_chunked", recording)
    config = EncodeConfig(chunk_frames=16)
    encode_features(checkpoint, fake.out, config=config, workers=0)
    # each segment after its warm-up: 1 s mirrored (a 1 s segment mirrors 39 frames' worth)
    assert chunked_calls == [(72000 + 24000, 16), (24000 + 23400, 16)]
    expected = expected_features(checkpoint, fake, config)  # whole segments, unchunked
    store = open_store(_store(fake))
    tokens = store.read(TOKENS, 0, 160)
    expected.assert_tokens(0, tokens[:120])
    expected.assert_tokens(1, tokens[120:])
    np.testing.assert_allclose(
        store.read(EMBEDDINGS, 0, 160).astype(np.float32),
        np.concatenate(expected.embeddings),
        rtol=FLOAT16_RTOL,
        atol=BATCH_ATOL,
    )


def test_new_shards_are_appended_alone_and_a_rerun_with_nothing_new_does_nothing(
    checkpoint, fake, tmp_path, monkeypatch
):
    whole = write_out(tmp_path / "whole", SIZES, durations=TAILS)
    encode_features(checkpoint, whole.out, workers=0)

    catalog_without(fake, {fake.shards[-1]})  # the last shard is next year's
    first = encode_features(checkpoint, fake.out, workers=0)
    assert open_store(_store(fake)).shards == fake.shards[:2]
    full_catalog(fake)
    encoded = record_encoded_shards(monkeypatch)
    second = encode_features(checkpoint, fake.out, workers=0)
    assert encoded == [fake.shards[-1]]
    assert (first.n_shards_encoded, second.n_shards_before, second.n_shards_encoded) == (2, 2, 1)
    snapshot(_store(fake)).assert_equal(snapshot(_store(whole)))

    # Nothing new: no model loaded, no shard read, no Dask cluster started, store untouched.
    def refuse(*args, **kwargs):
        raise AssertionError("a re-run with nothing new started work")

    for name in ("load_tokenizer", "encode_shard", "dask_client"):
        monkeypatch.setattr(training.encode, name, refuse)
    third = encode_features(checkpoint, fake.out, workers=2)
    assert (third.n_shards_before, third.n_shards_encoded) == (3, 0)
    assert "nothing to do" in third.describe()
    snapshot(_store(fake)).assert_equal(snapshot(_store(whole)))


@pytest.mark.faults
@pytest.mark.parametrize("crash_at", ["table_part", "commit"])
def test_a_run_killed_inside_an_append_resumes_to_the_uninterrupted_store(
    checkpoint, fake, tmp_path, monkeypatch, crash_at
):
    whole = write_out(tmp_path / "whole", SIZES, durations=TAILS)
    encode_features(checkpoint, whole.out, workers=0)

    # The second shard's append dies after its data regions are written: at its table
    # part, or at the commit (attrs writes: 1 creates the store, 2 commits shard 1).
    if crash_at == "table_part":
        owner, name, fatal_call = analysis.segment_table, "write_part", 2
    else:
        owner, name, fatal_call = type(open_store(_store(whole)).group), "update_attributes", 3
    calls = []
    original = getattr(owner, name)

    def dying(*args, **kwargs):
        calls.append(name)
        if len(calls) == fatal_call:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, dying)
    with pytest.raises(KeyboardInterrupt):
        encode_features(checkpoint, fake.out, workers=0)
    monkeypatch.undo()
    store = open_store(_store(fake))
    assert (store.shards, store.n_frames) == (fake.shards[:1], sum(FRAMES[:3]))
    assert store.array(TOKENS).shape[0] == sum(FRAMES[:5])  # the unfinished rows are there

    resumed = encode_features(checkpoint, fake.out, workers=0)
    assert (resumed.n_shards_before, resumed.n_shards_encoded) == (1, 2)
    snapshot(_store(fake)).assert_equal(snapshot(_store(whole)))


def test_a_store_of_another_checkpoint_is_refused_unless_forced(checkpoint, fake, tmp_path):
    encode_features(checkpoint, fake.out, workers=0)
    before = snapshot(_store(fake))
    other = save_tiny_tokenizer(tmp_path / "other.pt", seed=2)
    old, new = checkpoint_sha256(str(checkpoint)), checkpoint_sha256(str(other))
    with pytest.raises(CheckpointMismatchError) as refused:
        encode_features(other, fake.out, workers=0)
    message = str(refused.value)
    assert f"holds features of checkpoint sha256 {old}" in message
    assert f"this checkpoint is {new}" in message
    assert "--force" in message
    snapshot(_store(fake)).assert_equal(before)

    replaced = encode_features(other, fake.out, workers=0, force=True)
    assert replaced.n_shards_encoded == 3
    fresh = write_out(tmp_path / "fresh", SIZES, durations=TAILS)
    encode_features(other, fresh.out, workers=0)
    snapshot(_store(fake)).assert_equal(snapshot(_store(fresh)))


def test_other_output_shaping_settings_are_refused_and_others_accepted(checkpoint, fake):
    encode_features(checkpoint, fake.out, workers=0)
    with pytest.raises(OutputConflictError, match=r"gain\.mode differ"):
        encode_features(checkpoint, fake.out, config=EncodeConfig(gain={"mode": "none"}), workers=0)
    # Batch size and chunking change speed, not what the store holds.
    again = encode_features(
        checkpoint, fake.out, config=EncodeConfig(batch_size=4, chunk_frames=50), workers=0
    )
    assert again.n_shards_encoded == 0


def test_bad_samples_are_skipped_and_unreadable_shards_left_for_the_next_run(
    checkpoint, fake, tmp_path
):
    garble_sample(fake, fake.all_keys[4])  # in shard 1
    saved = fake.shard_path(fake.shards[2]).read_bytes()
    cut_shard(fake, fake.shards[2])
    fake.shard_path(fake.shards[0]).rename(tmp_path / "away.tar")

    summary = encode_features(checkpoint, fake.out, workers=0)
    assert summary.skipped == {"audio": 1}
    assert sorted(summary.failed) == [fake.shards[0], fake.shards[2]]
    assert "cannot open" in summary.failed[fake.shards[0]]
    assert "unexpected end of data" in summary.failed[fake.shards[2]]
    store = open_store(_store(fake))
    assert store.shards == [fake.shards[1]]
    assert store.read_segments().column("key").to_pylist() == [fake.all_keys[3]]

    (tmp_path / "away.tar").rename(fake.shard_path(fake.shards[0]))
    fake.shard_path(fake.shards[2]).write_bytes(saved)
    again = encode_features(checkpoint, fake.out, workers=0)
    assert (again.n_shards_before, again.n_shards_encoded, again.failed) == (1, 2, {})
    store = open_store(_store(fake))
    assert store.shards == [fake.shards[1], fake.shards[0], fake.shards[2]]
    keys = fake.keys
    assert store.read_segments().column("key").to_pylist() == (
        [fake.all_keys[3]] + keys[fake.shards[0]] + keys[fake.shards[2]]
    )


def test_segments_with_unusable_metadata_are_skipped_with_a_reason(checkpoint, tmp_path):
    fake = write_out(tmp_path / "out", (3,), row_changes={1: {"recording_id": ""}})
    summary = encode_features(checkpoint, fake.out, workers=0)
    assert summary.skipped == {"metadata": 1}
    keys = open_store(_store(fake)).read_segments().column("key").to_pylist()
    assert keys == [fake.all_keys[0], fake.all_keys[2]]


def test_filters_choose_the_segments(checkpoint, fake):
    config = EncodeConfig(filters={"sites": ["B"]})
    summary = encode_features(checkpoint, fake.out, config=config, workers=0)
    keys = open_store(_store(fake)).read_segments().column("key").to_pylist()
    assert keys == [key for key in fake.all_keys if fake.row(key)[Col.SITE] == "B"]
    assert summary.n_segments == 4


@pytest.mark.parametrize("policy", ["clip", "skip", "error"])
def test_embeddings_beyond_float16_follow_the_overflow_policy(tmp_path, fake, policy):
    # Every embedding × 1e6: each segment has values beyond float16's 65504, most do not.
    loud = save_tiny_tokenizer(tmp_path / "loud.pt", latent_scale=1e6)
    config = EncodeConfig(float16_overflow=policy)
    expected = expected_features(loud, fake, config)
    every = np.concatenate(expected.embeddings)
    assert all(np.abs(e).max() > 65504 for e in expected.embeddings)
    assert 0.5 < (np.abs(every) <= 65504).mean() < 1
    if policy == "error":
        with pytest.raises(SonotypeError, match="beyond float16's ±65504"):
            encode_features(loud, fake.out, config=config, workers=0)
        return
    summary = encode_features(loud, fake.out, config=config, workers=0)
    store = open_store(_store(fake))
    if policy == "skip":
        assert summary.skipped == {"float16_overflow": 9}
        assert (store.n_segments, store.shards) == (0, fake.shards)
        return
    assert summary.n_clipped == 9
    embeddings = store.read(EMBEDDINGS, 0, store.n_frames).astype(np.float32)
    np.testing.assert_allclose(  # rounding differences scale with the embeddings
        embeddings, np.clip(every, -65504, 65504), rtol=FLOAT16_RTOL, atol=BATCH_ATOL * 1e6
    )
    # pooled comes from the float32 values, before clipping
    pooled = store.read(POOLED, 0, 9)
    np.testing.assert_allclose(
        pooled, [e.mean(axis=0) for e in expected.embeddings], rtol=1e-5, atol=BATCH_ATOL * 1e5
    )


def test_shards_whose_every_segment_is_skipped_are_recorded_as_done(tmp_path, fake):
    broken = save_tiny_tokenizer(tmp_path / "nan.pt", latent_scale=float("nan"))
    summary = encode_features(broken, fake.out, workers=0)
    assert summary.skipped == {"nonfinite_embeddings": 9}
    store = open_store(_store(fake))
    assert (store.n_segments, store.n_frames, store.shards) == (0, 0, fake.shards)
    assert encode_features(broken, fake.out, workers=0).n_shards_encoded == 0


def test_the_digest_is_the_file_hash_plus_a_published_checkpoints_config(checkpoint, tmp_path):
    plain = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert checkpoint_sha256(str(checkpoint)) == plain
    # A sonotype checkpoint describes itself: giving its config changes nothing.
    assert checkpoint_sha256(str(checkpoint), preset("tiny")) == plain
    published = tmp_path / "published.ckpt"
    torch.save({"state_dict": {"feature_extractor.x": torch.zeros(1)}}, published)
    digests = {
        checkpoint_sha256(str(published)),
        checkpoint_sha256(str(published), preset("wavtokenizer-40")),
        checkpoint_sha256(str(published), preset("wavtokenizer-75")),
    }
    assert len(digests) == 3
    with pytest.raises(CheckpointMismatchError, match="not found"):
        checkpoint_sha256(str(tmp_path / "missing.pt"))


def test_shards_at_another_rate_and_unusable_devices_are_named_errors(
    checkpoint, tmp_path, fake, monkeypatch
):
    other = write_out(tmp_path / "16k", (1,), sample_rate=16000)
    with pytest.raises(SonotypeError, match="hold 16000 Hz audio and the tokenizer expects 24000"):
        encode_features(checkpoint, other.out, workers=0)
    with pytest.raises(SonotypeError, match="'tpu' is not a torch device"):
        encode_features(checkpoint, fake.out, device="tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a machine without CUDA
    with pytest.raises(SonotypeError, match="CUDA is not available"):
        encode_features(checkpoint, fake.out, device="cuda")
    with pytest.raises(SonotypeError, match="give one or the other"):
        encode_features(checkpoint, fake.out, device="meta", scheduler="tcp://nowhere:1")


@pytest.mark.parametrize("mode", ["peak", "none"])
def test_each_frame_keeps_the_recorded_loudness_whatever_gain_the_encoder_saw(
    checkpoint, fake, mode
):
    config = EncodeConfig.model_validate({"gain": {"mode": mode}})
    encode_features(checkpoint, fake.out, config=config, workers=0)
    store = open_store(_store(fake))
    assert store.has_loudness
    loudness = store.read(LOUDNESS, 0, store.n_frames).astype(np.float64)
    hop = SAMPLE_RATE // 40
    for segment in store.read_segments(columns=["key", "frame_start", "n_frames"]).to_pylist():
        index = fake.all_keys.index(segment["key"])
        signal = ramp(index, round(fake.row(segment["key"])["duration_s"] * SAMPLE_RATE))
        frames = range(segment["n_frames"])
        expected = [10 * np.log10(np.mean(signal[f * hop : (f + 1) * hop] ** 2)) for f in frames]
        first = segment["frame_start"]
        # float16 keeps about 0.03 dB at these levels
        np.testing.assert_allclose(
            loudness[first : first + segment["n_frames"]], expected, atol=0.05
        )


def test_a_store_written_before_loudness_existed_is_refused_unless_forced(checkpoint, fake):
    encode_features(checkpoint, fake.out, workers=0)
    zarr.open_group(_store(fake), mode="r+").__delitem__(LOUDNESS)
    with pytest.raises(OutputConflictError, match=r"earlier sonotype.*--force"):
        encode_features(checkpoint, fake.out, workers=0)
    encode_features(checkpoint, fake.out, workers=0, force=True)
    assert open_store(_store(fake)).has_loudness


def _one_recording(root: Path, gap_after: int | None = None):
    """Four 1 s segments of one recording, back to back (or with a gap after one)."""
    changes = {}
    for index in range(4):
        offset = float(index) + (0.5 if gap_after is not None and index > gap_after else 0.0)
        changes[index] = {Col.RECORDING_ID: "recA", Col.OFFSET_S: offset}
    return write_out(root, (4,), row_changes=changes)


def _whole_recording(checkpoint: Path, segments: range) -> tuple[np.ndarray, np.ndarray]:
    """Tokens and embeddings of some segments' audio encoded as one signal, one gain."""
    tokenizer = training.tokenizer.load_tokenizer(checkpoint)
    whole = np.concatenate([ramp(index, SAMPLE_RATE) for index in segments])
    return encode_like_a_run(tokenizer, whole, EncodeConfig())


def test_a_recordings_frames_do_not_depend_on_where_ingest_cut_it(checkpoint, tmp_path):
    fake = _one_recording(tmp_path / "out")
    encode_features(checkpoint, fake.out, workers=0)
    store = open_store(_store(fake))
    codes, latents = _whole_recording(checkpoint, range(4))
    embeddings = store.read(EMBEDDINGS, 0, store.n_frames).astype(np.float32)
    assert store.n_frames == len(codes) == 160
    np.testing.assert_allclose(embeddings, latents, rtol=FLOAT16_RTOL, atol=BATCH_ATOL)
    # encoded segment by segment, the frames at each cut differ from the continuous ones
    alone = _one_recording(tmp_path / "alone")
    encode_features(checkpoint, alone.out, config=EncodeConfig(context="segment"), workers=0)
    cut = open_store(_store(alone)).read(EMBEDDINGS, 0, 160).astype(np.float32)
    at_cuts = np.abs(cut - latents)[[39, 40, 79, 80, 119, 120]].max()
    assert at_cuts > 8 * FLOAT16_RTOL * np.abs(latents).max()


def test_a_gap_between_segments_starts_a_new_continuous_run(checkpoint, tmp_path):
    fake = _one_recording(tmp_path / "out", gap_after=1)
    encode_features(checkpoint, fake.out, workers=0)
    embeddings = open_store(_store(fake)).read(EMBEDDINGS, 0, 160).astype(np.float32)
    for frames, run in ((slice(0, 80), range(2)), (slice(80, 160), range(2, 4))):
        _, latents = _whole_recording(checkpoint, run)
        np.testing.assert_allclose(embeddings[frames], latents, rtol=FLOAT16_RTOL, atol=BATCH_ATOL)
