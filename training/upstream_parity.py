"""Compare sonotype's modules with the upstream packages they follow: EnCodec and Vocos.

WavTokenizer's encoder and codebook are EnCodec's (`encodec.modules.SEANetEncoder`,
`encodec.quantization.core_vq.EuclideanCodebook`), its backbone is Vocos' plus an
attention prenet, and its head and MPD are Vocos' (`vocos.models.VocosBackbone`,
`vocos.heads.ISTFTHead`, `vocos.discriminators.MultiPeriodDiscriminator`). This tool
builds a published-size model with random weights, exports it in the published layout
(`training.published`), loads those tensors into the upstream modules and compares
outputs on inputs whose lengths are not multiples of the hop. The prenet has no upstream
module (its ResBlocks and attention are tested against explicit formulas in the test
suite), so the backbone is compared with the prenet bypassed; Vocos 0.1.0's MRD is a
later, multi-band design, and the DAC discriminator's package needs audiotools, so
neither is compared here.

Needs `pip install encodec==0.1.1 vocos==0.1.0` (not dependencies of sonotype):

    python -m training.upstream_parity [--presets wavtokenizer-40 wavtokenizer-75]

Exit status 0 when every output is equal within `--atol` and every code is identical.
"""

import argparse
import logging
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from sonotype.config.load import load_config, resolve_preset
from sonotype.config.model import ModelConfig
from sonotype.logs import configure_logging
from training.model import build_discriminators, build_generator
from training.published import published_state_dict

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ComponentResult:
    """One module on one input."""

    preset: str
    component: str
    case: str
    max_abs_diff: float
    passed: bool


def _part(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}


def _diff(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return float((ours - theirs).abs().max()) if ours.shape == theirs.shape else math.inf


def compare_components(preset: str, atol: float, seed: int = 0) -> list[ComponentResult]:
    """Build `preset` with random weights and compare it module by module with upstream.

    Raises:
        ImportError: encodec or vocos is not installed.
    """
    from encodec.modules import SEANetEncoder
    from encodec.quantization.core_vq import EuclideanCodebook
    from vocos.discriminators import MultiPeriodDiscriminator
    from vocos.heads import ISTFTHead
    from vocos.models import VocosBackbone

    config = load_config(ModelConfig, resolve_preset("model", preset))
    torch.manual_seed(seed)
    generator = build_generator(config).eval()
    discriminators = build_discriminators(config)
    size, dim = config.quantizer.codebook_size, config.encoder.dimension
    generator.quantizer.initialize(torch.randn(size, dim), torch.ones(size))
    state = published_state_dict(generator, discriminators)
    e, b, h = config.encoder, config.backbone, config.head

    # EncodecFeatures' arguments, with our config's sizes.
    encoder = SEANetEncoder(
        channels=1,
        dimension=e.dimension,
        n_filters=e.n_filters,
        n_residual_layers=1,
        ratios=list(reversed(e.strides)),
        activation="ELU",
        norm="weight_norm",
        kernel_size=e.kernel_size,
        residual_kernel_size=e.residual_kernel_size,
        last_kernel_size=e.last_kernel_size,
        dilation_base=2,
        causal=False,
        pad_mode="reflect",
        true_skip=False,
        compress=e.compress,
        lstm=e.n_lstm_layers,
    )
    encoder.load_state_dict(_part(state, "feature_extractor.encodec.encoder."))
    codebook = EuclideanCodebook(dim=dim, codebook_size=size, kmeans_init=True)
    codebook.load_state_dict(
        _part(state, "feature_extractor.encodec.quantizer.vq.layers.0._codebook.")
    )
    backbone = VocosBackbone(
        input_channels=dim,
        dim=b.dim,
        intermediate_dim=b.intermediate_dim,
        num_layers=b.n_layers,
        adanorm_num_embeddings=b.n_conditions,
    )
    backbone.load_state_dict(
        {k: v for k, v in _part(state, "backbone.").items() if "pos_net" not in k}
    )
    head = ISTFTHead(dim=b.dim, n_fft=h.n_fft, hop_length=h.hop_length, padding="same")
    head.load_state_dict(_part(state, "head."))
    mpd = MultiPeriodDiscriminator()
    mpd.load_state_dict(_part(state, "multiperioddisc."))

    results = []
    hop, rate = config.hop_length, config.sample_rate

    def record(component: str, case: str, diff: float, ok: bool = True) -> None:
        results.append(ComponentResult(preset, component, case, diff, ok and diff <= atol))

    with torch.no_grad():
        for n_samples in (1, 77, hop - 1, hop + 1, 5 * hop + 123, rate + 17):
            wav = 0.3 * torch.randn(2, n_samples)
            ours, theirs = generator.encoder(wav), encoder.eval()(wav.unsqueeze(1))
            record(
                "encoder",
                f"T={n_samples}",
                _diff(ours, theirs),
                ours.shape[-1] == math.ceil(n_samples / hop),
            )
            same = torch.equal(
                generator.quantizer.encode(ours), codebook.encode(theirs.transpose(1, 2))
            )
            record("codebook", f"T={n_samples}", 0.0 if same else math.inf)
        prenet, generator.backbone.prenet = generator.backbone.prenet, nn.Identity()
        try:
            for n_frames in (1, 7, 40):
                for condition in (0, b.n_conditions - 1 if b.n_conditions else 0):
                    latents = torch.randn(2, dim, n_frames)
                    ours = generator.backbone(latents, condition)
                    theirs = backbone.eval()(latents, bandwidth_id=torch.tensor([condition]))
                    case = f"F={n_frames} condition={condition}"
                    record("backbone without prenet", case, _diff(ours, theirs))
                    record("head", case, _diff(generator.head(ours), head(theirs)))
        finally:
            generator.backbone.prenet = prenet
        wav = 0.3 * torch.randn(2, rate // 2 + 5)
        real, _, maps, _ = mpd(wav, wav)
        for index, output in enumerate(discriminators["mpd"](wav)):
            diffs = [_diff(output.logits, real[index])]
            diffs += [_diff(a, b) for a, b in zip(output.feature_maps, maps[index], strict=True)]
            record("mpd", f"period {index}", max(diffs))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison; 0 when everything matches."""
    parser = argparse.ArgumentParser(prog="python -m training.upstream_parity", description=__doc__)
    parser.add_argument("--presets", nargs="+", default=["wavtokenizer-40", "wavtokenizer-75"])
    parser.add_argument("--atol", type=float, default=1e-5)
    args = parser.parse_args(argv)
    results = [r for preset in args.presets for r in compare_components(preset, args.atol)]
    for r in results:
        verdict = "ok" if r.passed else "FAILED"
        logger.info(
            "%s %-24s %-22s max|diff| %.3g %s",
            r.preset,
            r.component,
            r.case,
            r.max_abs_diff,
            verdict,
        )
    passed = all(r.passed for r in results)
    logger.info("parity with encodec/vocos: %s", "PASSED" if passed else "FAILED")
    return 0 if passed else 1


if __name__ == "__main__":
    configure_logging(logging.INFO)
    sys.exit(main())
