"""Compare sonotype's modules with the upstream packages WavTokenizer's code comes from.

WavTokenizer's encoder and codebook are EnCodec's (`encodec.modules.SEANetEncoder`,
`encodec.quantization.core_vq.EuclideanCodebook`); its backbone is Vocos'
(`vocos.models.VocosBackbone`) with a prenet of taming-transformers' `ResnetBlock` and
`AttnBlock` made 1-D; its head and MPD are Vocos' (`vocos.heads.ISTFTHead`,
`vocos.discriminators.MultiPeriodDiscriminator`). This tool builds a published-size
model with random weights, exports it in the published layout (`training.published`),
loads those tensors into the upstream modules and compares outputs, on inputs whose
lengths are not multiples of the hop. The 2-D taming blocks run on `[B, H, F, 1]`
images with the 1-D kernels in the middle column of their 3×3 kernels (the outer
columns only ever see zero padding). Finally the upstream modules are chained the way
WavTokenizer's `encode_infer` and `decode` chain them, and the codes and waveform are
compared with sonotype's. Not compared: the MRD (Vocos 0.1.0 ships a later multi-band
design) and the DAC discriminator (its package needs audiotools).

Needs `pip install encodec==0.1.1 vocos==0.1.0 taming-transformers==0.0.1` (not
dependencies of sonotype):

    python -m training.upstream_parity [--presets wavtokenizer-40 wavtokenizer-75]

Exit status 0 when every output is equal within `--atol` (default 1e-5; the waveform
end to end: 1e-4) and every code is identical.
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


def _as_image_kernels(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """1-D conv weights `[out, in, k]` → 2-D `[out, in, k, k]` with them in the middle column."""
    converted = {}
    for key, tensor in state.items():
        if tensor.ndim == 3:
            size = tensor.shape[-1]
            image = tensor.new_zeros(*tensor.shape, size)
            image[..., size // 2] = tensor
            tensor = image
        converted[key] = tensor
    return converted


class _ReferenceBackbone(nn.Module):
    """WavTokenizer's VocosBackbone.forward, made of Vocos' backbone and taming's blocks."""

    def __init__(
        self, vocos_backbone: nn.Module, prenet: nn.ModuleList, resnet_block: type
    ) -> None:
        super().__init__()
        self.vocos = vocos_backbone
        self.prenet = prenet
        self.resnet_block = resnet_block  # taming's ResnetBlock takes a (None) time embedding

    def forward(self, latents: torch.Tensor, condition: int) -> torch.Tensor:
        condition_id = torch.tensor([condition])
        x = self.vocos.embed(latents).unsqueeze(-1)  # [B, H, F, 1]: a 1-pixel-wide image
        for block in self.prenet:
            x = (
                block(x, None)
                if hasattr(block, "nin_shortcut") or hasattr(block, "norm1")
                else block(x)
            )
        x = self.vocos.norm(x.squeeze(-1).transpose(1, 2), cond_embedding_id=condition_id)
        x = x.transpose(1, 2)
        for block in self.vocos.convnext:
            x = block(x, cond_embedding_id=condition_id)
        return self.vocos.final_layer_norm(x.transpose(1, 2))


def _upstream_modules(config: ModelConfig, state: dict[str, torch.Tensor]) -> dict[str, nn.Module]:
    """The upstream modules of WavTokenizer, holding the tensors of a published-layout state."""
    from encodec.modules import SEANetEncoder
    from encodec.quantization.core_vq import EuclideanCodebook
    from taming.modules.diffusionmodules.model import AttnBlock, Normalize, ResnetBlock
    from vocos.discriminators import MultiPeriodDiscriminator
    from vocos.heads import ISTFTHead
    from vocos.models import VocosBackbone

    e, b, h = config.encoder, config.backbone, config.head
    # EncodecFeatures' arguments, with our config's sizes.
    encoder = SEANetEncoder(
        channels=1, dimension=e.dimension, n_filters=e.n_filters, n_residual_layers=1,
        ratios=list(reversed(e.strides)), activation="ELU", norm="weight_norm",
        kernel_size=e.kernel_size, residual_kernel_size=e.residual_kernel_size,
        last_kernel_size=e.last_kernel_size, dilation_base=2, causal=False, pad_mode="reflect",
        true_skip=False, compress=e.compress, lstm=e.n_lstm_layers,
    )  # fmt: skip
    encoder.load_state_dict(_part(state, "feature_extractor.encodec.encoder."))
    codebook = EuclideanCodebook(dim=e.dimension, codebook_size=config.quantizer.codebook_size)
    codebook.load_state_dict(
        _part(state, "feature_extractor.encodec.quantizer.vq.layers.0._codebook.")
    )
    vocos = VocosBackbone(
        input_channels=e.dimension, dim=b.dim, intermediate_dim=b.intermediate_dim,
        num_layers=b.n_layers, adanorm_num_embeddings=b.n_conditions,
    )  # fmt: skip
    backbone_state = _part(state, "backbone.")
    vocos.load_state_dict({k: v for k, v in backbone_state.items() if "pos_net" not in k})
    prenet = nn.ModuleList(
        [
            ResnetBlock(in_channels=b.dim, out_channels=b.dim, temb_channels=0, dropout=0.1),
            ResnetBlock(in_channels=b.dim, out_channels=b.dim, temb_channels=0, dropout=0.1),
            AttnBlock(b.dim),
            ResnetBlock(in_channels=b.dim, out_channels=b.dim, temb_channels=0, dropout=0.1),
            ResnetBlock(in_channels=b.dim, out_channels=b.dim, temb_channels=0, dropout=0.1),
            Normalize(b.dim),
        ]
    )
    prenet.load_state_dict(_as_image_kernels(_part(backbone_state, "pos_net.")))
    head = ISTFTHead(dim=b.dim, n_fft=h.n_fft, hop_length=h.hop_length, padding="same")
    head.load_state_dict(_part(state, "head."))
    mpd = MultiPeriodDiscriminator()
    mpd.load_state_dict(_part(state, "multiperioddisc."))
    modules = {
        "encoder": encoder,
        "codebook": codebook,
        "vocos": vocos,
        "backbone": _ReferenceBackbone(vocos, prenet, ResnetBlock),
        "head": head,
        "mpd": mpd,
    }
    return {name: module.eval() for name, module in modules.items()}


def compare_components(preset: str, atol: float, seed: int = 0) -> list[ComponentResult]:
    """Build `preset` with random weights and compare it with the upstream modules.

    Raises:
        ImportError: encodec, vocos or taming-transformers is not installed.
    """
    config = load_config(ModelConfig, resolve_preset("model", preset))
    torch.manual_seed(seed)
    generator = build_generator(config).eval()
    discriminators = build_discriminators(config)
    size, dim = config.quantizer.codebook_size, config.encoder.dimension
    generator.quantizer.initialize(torch.randn(size, dim), torch.ones(size))
    upstream = _upstream_modules(config, published_state_dict(generator, discriminators))
    results = []
    hop, rate = config.hop_length, config.sample_rate

    def record(component: str, case: str, diff: float, tolerance: float = atol) -> None:
        results.append(ComponentResult(preset, component, case, diff, diff <= tolerance))

    with torch.no_grad():
        for n_samples in (1, 77, hop - 1, hop + 1, 5 * hop + 123, rate + 17):
            wav = 0.3 * torch.randn(2, n_samples)
            case = f"T={n_samples}"
            ours, theirs = generator.encoder(wav), upstream["encoder"](wav.unsqueeze(1))
            frames_ok = ours.shape[-1] == math.ceil(n_samples / hop)
            record("encoder", case, _diff(ours, theirs) if frames_ok else math.inf)
            codes = generator.quantizer.encode(ours)
            reference_codes = upstream["codebook"].encode(theirs.transpose(1, 2))
            record("codebook", case, 0.0 if torch.equal(codes, reference_codes) else math.inf)
            # End to end, as WavTokenizer's encode_infer then decode(codes_to_features(codes)).
            quantized = upstream["codebook"].decode(reference_codes).transpose(1, 2)
            reference_audio = upstream["head"](upstream["backbone"](quantized, 0))
            record(
                "waveform end to end", case, _diff(generator.decode(codes), reference_audio), 1e-4
            )
        for n_frames in (1, 7, 40):
            for condition in sorted({0, (config.backbone.n_conditions or 1) - 1}):
                latents = torch.randn(2, dim, n_frames)
                case = f"F={n_frames} condition={condition}"
                ours = generator.backbone(latents, condition)
                record("backbone", case, _diff(ours, upstream["backbone"](latents, condition)))
                record("head", case, _diff(generator.head(ours), upstream["head"](ours)))
        wav = 0.3 * torch.randn(2, rate // 2 + 5)
        real, _, maps, _ = upstream["mpd"](wav, wav)
        for index, output in enumerate(discriminators["mpd"](wav)):
            diffs = [_diff(output.logits, real[index])]
            diffs += [_diff(a, b) for a, b in zip(output.feature_maps, maps[index], strict=True)]
            record("mpd", f"period {index}", max(diffs))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison; 0 when everything matches."""
    parser = argparse.ArgumentParser(prog="python -m training.upstream_parity", description=__doc__)
    parser.add_argument("--presets", nargs="+", default=["wavtokenizer-40", "wavtokenizer-75"])
    parser.add_argument("--atol", type=float, default=1e-5, help="tolerance of module outputs")
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
