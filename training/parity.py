"""Compare sonotype's WavTokenizer with the reference implementation on a published checkpoint.

Not run by the test suite (it needs a published checkpoint and a checkout of the
reference code, neither of which the tests may download). Run it where you have both:

    python -m training.parity \\
        --checkpoint WavTokenizer_small_600_24k_4096.ckpt \\
        --config wavtokenizer_smalldata_frame40_3s_nq1_code4096_dim512_kmeans200_attn.yaml \\
        --reference /path/to/WavTokenizer [--device cuda] [--report parity.json]

The reference environment's packages (einops, torchaudio, ...) must be importable. Both
models load the same file: sonotype through `load_tokenizer`, the reference through
`WavTokenizer.from_hparams0802(yaml)` plus `load_state_dict` of the same weights read
with `weights_only=True` (the reference's own loader unpickles the whole file). Inputs
are seeded synthetic signals (tones, a chirp, clicks, noise) whose lengths are not
multiples of the hop. Checks, per input:

- codes identical to `reference.encode_infer(wav, bandwidth_id=[0])`;
- embeddings (pre-quantization encoder output) within `--atol` of the reference encoder's;
- waveform of `decode(codes)` within `--atol` (default 1e-4) of
  `reference.decode(reference.codes_to_features(codes), bandwidth_id=[0])`.

Exit status 0 when every check passes, 1 otherwise; the report lists every figure.
"""

import argparse
import importlib
import json
import logging
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from sonotype.fsio import write_text_atomic
from sonotype.logs import configure_logging
from training.checkpoint import read_checkpoint_file
from training.tokenizer import Tokenizer, load_tokenizer

logger = logging.getLogger(__name__)

DEFAULT_ATOL = 1e-4
"""Largest allowed absolute difference of waveforms and embeddings."""


@dataclass(frozen=True)
class ParityResult:
    """The comparison of one input."""

    n_samples: int
    n_frames: int
    codes_equal: bool
    n_codes_differing: int
    embedding_max_abs_diff: float
    audio_max_abs_diff: float
    passed: bool


def parity_signals(sample_rate: int, hop_length: int, seed: int = 0) -> list[torch.Tensor]:
    """Seeded synthetic inputs `[1, T]` whose lengths are not multiples of the hop."""
    generator = torch.Generator().manual_seed(seed)
    signals = []
    for n_hops, remainder in ((50, 123), (13, 1), (7, hop_length - 1)):
        n_samples = n_hops * hop_length + remainder
        t = torch.arange(n_samples) / sample_rate
        tones = 0.3 * torch.sin(2 * math.pi * 440 * t) + 0.1 * torch.sin(2 * math.pi * 3150 * t)
        chirp = 0.2 * torch.sin(2 * math.pi * (200 + 2000 * t) * t)
        noise = 0.05 * torch.randn(n_samples, generator=generator)
        clicks = torch.zeros(n_samples)
        clicks[:: max(1, sample_rate // 7)] = 0.8
        signals.append((tones + chirp + noise + clicks).unsqueeze(0))
    return signals


def compare(
    tokenizer: Tokenizer, reference: Any, wav: torch.Tensor, atol: float = DEFAULT_ATOL
) -> ParityResult:
    """Compare both models on one input.

    Args:
        tokenizer: sonotype's tokenizer.
        reference: the reference `WavTokenizer` (eval mode, same device), or any object
            with its `encode_infer`, `codes_to_features`, `decode` and
            `feature_extractor.encodec.encoder`.
        wav: `[B, T]` on the models' device.
        atol: tolerance of embeddings and waveforms.
    """
    bandwidth_id = torch.tensor([0], device=wav.device)
    with torch.inference_mode():
        _, reference_codes = reference.encode_infer(wav, bandwidth_id=bandwidth_id)
        # Its codes come as [n_q, B, F] or [B, n_q, F] depending on the version; n_q = 1.
        reference_codes = reference_codes.reshape(-1, reference_codes.shape[-1]).long()
        reference_latents = reference.feature_extractor.encodec.encoder(wav.unsqueeze(1))
        features = reference.codes_to_features(reference_codes.unsqueeze(0))  # [1, B, F] in
        reference_audio = reference.decode(features, bandwidth_id=bandwidth_id)
    codes, embeddings = tokenizer.encode_with_embeddings(wav)
    audio = tokenizer.decode(codes)
    same_shape = codes.shape == reference_codes.shape
    n_differing = int((codes != reference_codes).sum()) if same_shape else codes.numel()
    embedding_diff = _max_abs_diff(embeddings, reference_latents.transpose(1, 2))
    audio_diff = _max_abs_diff(audio, reference_audio)
    return ParityResult(
        n_samples=wav.shape[-1],
        n_frames=codes.shape[-1],
        codes_equal=same_shape and n_differing == 0,
        n_codes_differing=n_differing,
        embedding_max_abs_diff=embedding_diff,
        audio_max_abs_diff=audio_diff,
        passed=same_shape and n_differing == 0 and embedding_diff <= atol and audio_diff <= atol,
    )


def _max_abs_diff(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    if ours.shape != theirs.shape:
        return math.inf
    return float((ours.float() - theirs.float()).abs().max()) if ours.numel() else 0.0


def load_reference(reference_dir: Path, config: Path, checkpoint: Path, device: str) -> Any:
    """The reference `WavTokenizer`, built from its YAML and given the checkpoint's weights.

    Raises:
        ImportError: the checkout's `decoder.pretrained` (or `wavtokenizer.decoder.pretrained`)
            cannot be imported.
    """
    sys.path.insert(0, str(reference_dir))
    try:
        module = importlib.import_module("decoder.pretrained")
    except ImportError:
        module = importlib.import_module("wavtokenizer.decoder.pretrained")
    model = module.WavTokenizer.from_hparams0802(str(config))
    state = read_checkpoint_file(checkpoint)["state_dict"]
    kept = {
        k: v for k, v in state.items() if k.startswith(("backbone.", "head.", "feature_extractor."))
    }
    model.load_state_dict(kept)
    return model.eval().to(device)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison; 0 when everything matches."""
    parser = argparse.ArgumentParser(
        prog="python -m training.parity",
        description="Compare sonotype's WavTokenizer with the reference on a published .ckpt.",
    )
    parser.add_argument("--checkpoint", required=True, type=Path, help="published .ckpt")
    parser.add_argument("--config", required=True, type=Path, help="its YAML")
    parser.add_argument("--reference", required=True, type=Path, help="reference checkout")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--atol", type=float, default=DEFAULT_ATOL)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)

    tokenizer = load_tokenizer(args.checkpoint, config=args.config).to(args.device)
    reference = load_reference(args.reference, args.config, args.checkpoint, args.device)
    results = [
        compare(tokenizer, reference, wav.to(args.device), args.atol)
        for wav in parity_signals(tokenizer.sample_rate, tokenizer.hop_length, args.seed)
    ]
    for result in results:
        logger.info("%s", json.dumps(asdict(result)))
    if args.report:
        write_text_atomic(args.report, json.dumps([asdict(r) for r in results], indent=2))
    passed = all(result.passed for result in results)
    logger.info("parity with the reference: %s", "PASSED" if passed else "FAILED")
    return 0 if passed else 1


if __name__ == "__main__":
    configure_logging(logging.INFO)
    sys.exit(main())
