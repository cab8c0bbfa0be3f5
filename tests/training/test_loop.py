"""The trainer end to end on small shards: loss falls, exact resume, checkpoints, metrics."""

import json
import math
from pathlib import Path

import pytest
import torch

import training
from sonotype.contracts import METRIC_SPLIT, METRIC_STEP, RunLayout
from sonotype.errors import CheckpointMismatchError, ConfigError, OutputConflictError, SonotypeError
from tests.training.trainer_config import tiny_train_config
from training.checkpoint import read_checkpoint_file
from training.metrics_log import read_metrics
from training.state import list_checkpoints

METRIC_PREFIXES = ("loss/", "codebook/", "val/", "grad_norm/", "lr/", "speed/", "memory/")


def _run(out: str, run_dir: Path, *overrides: str, **kwargs) -> training.TrainResult:
    return training.train(tiny_train_config(*overrides), shards=out, run_dir=str(run_dir), **kwargs)


def _checkpoint(run_dir: Path, step: int) -> dict:
    return read_checkpoint_file(RunLayout(str(run_dir)).checkpoint(step))


def _assert_same_tensors(left, right, where: str = "") -> None:
    """Nested dicts/lists of tensors and plain values are identical, bit for bit."""
    if isinstance(left, torch.Tensor):
        assert torch.equal(left, right), where
    elif isinstance(left, dict):
        assert left.keys() == right.keys(), where
        for key in left:
            _assert_same_tensors(left[key], right[key], f"{where}.{key}")
    elif isinstance(left, list | tuple):
        assert len(left) == len(right), where
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            _assert_same_tensors(a, b, f"{where}[{index}]")
    else:
        assert left == right, where


def test_killed_and_resumed_run_equals_the_uninterrupted_run(soundscape_out, tmp_path):
    # Accumulation, a mel-only step, adversarial steps, respawns and validation inside.
    settings = ["optim.accumulation_steps=2", "codebook.respawn_every_steps=1"]
    whole = _run(soundscape_out, tmp_path / "whole", *settings)
    first = _run(soundscape_out, tmp_path / "split", *settings, until_step=2)
    assert (first.step, first.interrupted) == (2, False)
    resumed = _run(soundscape_out, tmp_path / "split", *settings, resume=True)
    assert resumed.step == whole.step == 4
    assert resumed.weights_digest == whole.weights_digest

    expected, found = _checkpoint(tmp_path / "whole", 4), _checkpoint(tmp_path / "split", 4)
    for key in ("generator", "discriminators", "optimizers", "scaler", "rng", "data"):
        _assert_same_tensors(found[key], expected[key], key)

    def losses(run: str) -> list[dict]:
        records = read_metrics(RunLayout(str(tmp_path / run)).metrics)
        return [
            {k: v for k, v in r.items() if k.startswith(("loss/", "codebook/", "val/"))}
            for r in records
        ]

    assert losses("split") == losses("whole")


def test_loss_falls_on_the_tiny_config(soundscape_out, tmp_path):
    result = _run(
        soundscape_out,
        tmp_path / "run",
        "optim.max_steps=24",
        "losses.mel_only_warmup_steps=16",
        "validation.every_steps=0",
        "checkpoint.every_steps=100",
    )
    records = [r for r in read_metrics(RunLayout(result.run_dir).metrics) if r["split"] == "train"]
    mel = [r["loss/mel"] for r in records]
    assert len(mel) == 24
    first, last = sum(mel[:4]) / 4, sum(mel[-4:]) / 4
    assert last < 0.75 * first
    assert "loss/disc_mpd" in records[-1]
    assert "loss/disc_mpd" not in records[0]


def test_metrics_follow_the_contract_and_checkpoints_rotate(soundscape_out, tmp_path):
    run_dir = tmp_path / "run"
    result = _run(
        soundscape_out,
        run_dir,
        "checkpoint.every_steps=1",
        "checkpoint.keep_last=2",
        "logging.tensorboard=true",
    )
    layout = RunLayout(str(run_dir))
    assert [step for step, _ in list_checkpoints(layout)] == [3, 4]
    assert result.checkpoint == layout.checkpoint(4)
    assert not [p for p in Path(layout.checkpoints_dir).iterdir() if ".tmp-" in p.name]
    assert list(Path(layout.tensorboard_dir).glob("events.out.tfevents.*"))
    assert Path(layout.config).read_text().startswith("# resolved config written by")

    lines = Path(layout.metrics).read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert {r[METRIC_SPLIT] for r in records} == {"train", "val"}
    assert [r[METRIC_STEP] for r in records if r[METRIC_SPLIT] == "train"] == [1, 2, 3, 4]
    assert [r[METRIC_STEP] for r in records if r[METRIC_SPLIT] == "val"] == [2, 4]
    for record in records:
        assert isinstance(record[METRIC_STEP], int)
        for key, value in record.items():
            if key in (METRIC_STEP, METRIC_SPLIT, "time_s"):
                continue
            assert key.startswith(METRIC_PREFIXES), key
            assert isinstance(value, float), key
            assert math.isfinite(value), key
    train_keys = set(records[-2]) if records[-1][METRIC_SPLIT] == "val" else set(records[-1])
    for key in (
        "loss/mel",
        "loss/commit",
        "loss/gen_mpd",
        "loss/fm_mrd",
        "loss/disc_dac",
        "loss/total_g",
        "loss/total_d",
        "codebook/usage",
        "codebook/perplexity",
        "codebook/dead",
        "grad_norm/generator",
        "grad_norm/discriminator",
        "lr/generator",
        "speed/samples_per_s",
        "memory/peak_mb",
        "time_s",
    ):
        assert key in train_keys, key
    val = records[-1]
    for key in ("val/mel_distance", "val/stft_distance", "val/si_sdr", "val/codebook_usage"):
        assert key in val, key
    csv_lines = Path(layout.metrics_csv).read_text().splitlines()
    assert csv_lines[0] == "step,split,metric,value"
    assert len(csv_lines) - 1 == sum(len(r) - 2 for r in records)


def test_the_export_loads_with_load_tokenizer_and_encodes(soundscape_out, tmp_path):
    result = _run(soundscape_out, tmp_path / "run", "optim.max_steps=2")
    tokenizer = training.load_tokenizer(result.export)
    payload = read_checkpoint_file(result.export)
    assert payload["discriminators"] is None
    assert payload["extra"]["step"] == 2
    assert "optimizers" not in payload
    codes = tokenizer.encode(0.1 * torch.randn(2, 24000))
    assert codes.shape == (2, 40)
    assert int(codes.min()) >= 0
    assert int(codes.max()) < 512
    assert tokenizer.generator.quantizer.is_initialized


def test_an_existing_run_is_only_continued_with_resume(soundscape_out, tmp_path):
    _run(soundscape_out, tmp_path / "run", "optim.max_steps=2", "validation.every_steps=0")
    with pytest.raises(OutputConflictError, match="add --resume"):
        _run(soundscape_out, tmp_path / "run", "optim.max_steps=2")
    with pytest.raises(CheckpointMismatchError, match="no checkpoint to resume"):
        _run(soundscape_out, tmp_path / "empty", resume=True)
    with pytest.raises(CheckpointMismatchError, match=r"model differs.*backbone\.dim"):
        _run(soundscape_out, tmp_path / "run", "model.backbone.dim=32", resume=True)
    with pytest.raises(ConfigError, match="give only one"):
        _run(soundscape_out, tmp_path / "run", resume=True, init_from="x.ckpt")


def test_a_finished_run_resumes_to_nothing_even_when_the_data_changed(soundscape_out, tmp_path):
    # A new year's shards in OUT change the reader; a finished run has nothing to read.
    base = ["optim.max_steps=2", "validation.every_steps=0"]
    first = _run(soundscape_out, tmp_path / "run", *base)
    again = _run(soundscape_out, tmp_path / "run", *base, "data.shuffle_buffer=7", resume=True)
    assert (again.step, again.interrupted, again.export) == (2, False, first.export)
    assert again.weights_digest == first.weights_digest
    assert [step for step, _ in list_checkpoints(RunLayout(str(tmp_path / "run")))] == [2]
    # with steps left to train, the changed reader cannot continue the saved position
    with pytest.raises(SonotypeError, match="reader position"):
        _run(
            soundscape_out,
            tmp_path / "run",
            "optim.max_steps=3",
            "data.shuffle_buffer=7",
            "validation.every_steps=0",
            resume=True,
        )


def test_too_few_shards_for_validation_is_a_config_error(soundscape_out, tmp_path):
    with pytest.raises(ConfigError, match="held_out_shards=0"):
        _run(soundscape_out, tmp_path / "run", "validation.held_out_shards=3")


def test_a_codebook_below_the_thresholds_is_logged_and_recorded_as_collapsed(
    soundscape_out, tmp_path, caplog
):
    with caplog.at_level("WARNING", logger="training.loop"):
        _run(soundscape_out, tmp_path / "strict", "validation.min_codebook_usage=1.0")
    assert "codebook collapse:" in caplog.text
    assert "of codes used (threshold 100%)" in caplog.text
    records = read_metrics(RunLayout(str(tmp_path / "strict")).metrics)
    assert [r["val/codebook_collapsed"] for r in records if r[METRIC_SPLIT] == "val"] == [1.0, 1.0]
    caplog.clear()
    with caplog.at_level("WARNING", logger="training.loop"):
        _run(
            soundscape_out,
            tmp_path / "lenient",
            "validation.min_codebook_usage=0.0",
            "validation.min_codebook_perplexity=0.0",
        )
    assert "codebook collapse" not in caplog.text


def test_the_encoders_data_dependent_init_keeps_the_codebook_from_collapsing(
    soundscape_out, tmp_path
):
    # PyTorch's default init gives latents that barely vary: k-means then seeds every code
    # inside one tiny ball and the first steps send every frame to one code.
    def validation_perplexity(run: str, *overrides: str) -> float:
        _run(soundscape_out, tmp_path / run, *overrides)
        records = read_metrics(RunLayout(str(tmp_path / run)).metrics)
        return [r["val/codebook_perplexity"] for r in records if r[METRIC_SPLIT] == "val"][-1]

    default_init = validation_perplexity("default-init", "encoder_init.from_data=false")
    from_data = validation_perplexity("from-data")
    # Validation holds 80 frames here: perplexity 1 is one code for all of them.
    assert default_init < 2
    assert from_data > 8


def test_a_run_that_starts_unquantized_reseeds_its_codebook_at_the_switch_and_resumes_exactly(
    soundscape_out, tmp_path, caplog
):
    settings = ["losses.unquantized_warmup_steps=2"]
    with caplog.at_level("INFO", logger="training.codebook"):
        whole = _run(soundscape_out, tmp_path / "whole", *settings)
    assert caplog.text.count("codebook initialised by k-means") == 2  # at the start, at step 2
    _run(soundscape_out, tmp_path / "split", *settings, until_step=2)
    resumed = _run(soundscape_out, tmp_path / "split", *settings, resume=True)
    assert resumed.weights_digest == whole.weights_digest
    quantized_from_start = _run(soundscape_out, tmp_path / "quantized")
    assert quantized_from_start.weights_digest != whole.weights_digest
