"""The reference comparison tool, run against a stand-in with the reference's inference API.

The real comparison needs a published checkpoint and the reference checkout, which the
tests cannot download; this checks the tool's own logic: what it compares, how it reads
the reference's code layouts, and when it fails.
"""

import json
from types import SimpleNamespace

import pytest
import torch

from tests.training.conftest import preset, seed_codebook
from training import Tokenizer, parity
from training.model import build_generator
from training.parity import compare, parity_signals


class StandIn:
    """The reference WavTokenizer's inference methods, computed by our own generator."""

    def __init__(self, generator, codes_layout: str = "q b f", audio_offset: float = 0.0):
        self.generator = generator
        self.codes_layout = codes_layout
        self.audio_offset = audio_offset
        self.feature_extractor = SimpleNamespace(
            encodec=SimpleNamespace(encoder=lambda wav: generator.encoder(wav[:, 0]))
        )

    def encode_infer(self, wav, bandwidth_id):
        codes, _ = self.generator.encode(wav)
        codes = codes.unsqueeze(0) if self.codes_layout == "q b f" else codes.unsqueeze(1)
        return None, codes

    def codes_to_features(self, codes):  # [n_q = 1, B, F] → [B, D, F]
        return self.generator.quantizer.decode(codes[0])

    def decode(self, features, bandwidth_id):
        return self.generator.synthesize(features, int(bandwidth_id[0])) + self.audio_offset


@pytest.fixture(scope="module")
def tiny_config():
    """The tiny model with the reference's Euclidean codebook (the tiny preset is cosine)."""
    config = preset("tiny")
    return config.model_copy(
        update={"quantizer": config.quantizer.model_copy(update={"cosine": False})}
    )


@pytest.fixture(scope="module")
def tiny_generator(tiny_config):
    with torch.random.fork_rng():
        torch.manual_seed(1)
        generator = build_generator(tiny_config)
    seed_codebook(generator)
    return generator.eval()


@pytest.fixture
def tokenizer(tiny_generator, tiny_config) -> Tokenizer:
    return Tokenizer(tiny_generator, tiny_config)


def test_signals_are_seeded_and_not_whole_hops():
    signals = parity_signals(24000, 600)
    again = parity_signals(24000, 600)
    assert all(torch.equal(a, b) for a, b in zip(signals, again, strict=True))
    assert all(s.shape[0] == 1 and s.shape[-1] % 600 for s in signals)


@pytest.mark.parametrize("layout", ["q b f", "b q f"])
def test_identical_models_pass(tokenizer, tiny_generator, layout):
    for wav in parity_signals(24000, 600):
        result = compare(tokenizer, StandIn(tiny_generator, layout), wav)
        assert result.passed
        assert result.codes_equal
        assert result.n_frames == -(-wav.shape[-1] // 600)
        assert result.audio_max_abs_diff == 0.0
        assert result.embedding_max_abs_diff == 0.0


def test_a_waveform_off_by_more_than_the_tolerance_fails(tokenizer, tiny_generator):
    wav = parity_signals(24000, 600)[1]
    result = compare(tokenizer, StandIn(tiny_generator, audio_offset=2e-4), wav)
    assert result.codes_equal
    assert result.audio_max_abs_diff == pytest.approx(2e-4, rel=1e-2)
    assert not result.passed
    assert compare(tokenizer, StandIn(tiny_generator, audio_offset=5e-5), wav).passed


def test_different_codes_fail(tokenizer, tiny_generator):
    stand_in = StandIn(tiny_generator)
    encode_infer = stand_in.encode_infer
    stand_in.encode_infer = lambda wav, bandwidth_id: (
        None,
        (encode_infer(wav, bandwidth_id)[1] + 1) % 512,
    )
    result = compare(tokenizer, stand_in, parity_signals(24000, 600)[1])
    assert not result.codes_equal
    assert result.n_codes_differing == result.n_frames
    assert not result.passed


def test_main_reports_and_sets_the_exit_status(tmp_path, monkeypatch, tokenizer, tiny_generator):
    monkeypatch.setattr(parity, "load_tokenizer", lambda path, config: tokenizer)
    monkeypatch.setattr(parity, "load_reference", lambda *paths: StandIn(tiny_generator))
    report = tmp_path / "parity.json"
    args = [
        "--checkpoint",
        "x.ckpt",
        "--config",
        "x.yaml",
        "--reference",
        "ref",
        "--report",
        str(report),
    ]
    assert parity.main(args) == 0
    results = json.loads(report.read_text())
    assert len(results) == 3
    assert all(r["passed"] for r in results)
    monkeypatch.setattr(
        parity, "load_reference", lambda *paths: StandIn(tiny_generator, audio_offset=1.0)
    )
    assert parity.main(args) == 1
