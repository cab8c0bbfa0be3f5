"""Published-layout checkpoints made by the tests: key names and shapes from the reference
key lists (facts about the published files), random values, the reference's YAML layout."""

from pathlib import Path

import torch

REFERENCE_DIR = Path(__file__).parent / "reference"
VARIANTS = {
    # variant → (dowmsamples as the reference YAML lists them, n_fft, hop)
    "40": ([6, 5, 5, 4], 2400, 600),
    "75": ([8, 5, 4, 2], 1280, 320),
}
DISCRIMINATOR_PREFIXES = ("multiperioddisc.", "multiresddisc.", "dac.", "dacdiscriminator.")


def reference_layout(variant: str) -> dict[str, tuple[int, ...]]:
    """Key → shape of every tensor in the published checkpoint of `variant` ("40" or "75")."""
    lines = (REFERENCE_DIR / f"wavtokenizer-{variant}-keys.tsv").read_text().splitlines()[1:]
    layout = {}
    for line in lines:
        key, shape, dtype = line.split("\t")
        assert dtype == "float32"
        layout[key] = tuple(int(size) for size in shape.split("x"))
    return layout


def random_published_state(
    variant: str, seed: int = 0, with_discriminators: bool = True
) -> dict[str, torch.Tensor]:
    """A state_dict in the published layout with random values.

    The codebook is marked initialised and the ISTFT window is a Hann window, as in a
    trained checkpoint; `dac.*` holds the very tensors of `dacdiscriminator.discriminator.*`
    (one module under two names in the reference).
    """
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in reference_layout(variant).items():
        if key.startswith(DISCRIMINATOR_PREFIXES) and not with_discriminators:
            continue
        if key.startswith("dac."):
            continue
        if key.endswith("_codebook.inited"):
            state[key] = torch.ones(shape)
        elif key == "head.istft.window":
            state[key] = torch.hann_window(shape[0])
        else:
            state[key] = torch.randn(shape, generator=generator)
    if with_discriminators:
        twin = "dacdiscriminator.discriminator."
        for key in [k for k in state if k.startswith(twin)]:
            state["dac." + key.removeprefix(twin)] = state[key]
    return state


def lightning_checkpoint(state: dict[str, torch.Tensor]) -> dict:
    """What a Lightning `.ckpt` holds around the state_dict (plain data only)."""
    return {
        "epoch": 3,
        "global_step": 1200,
        "pytorch-lightning_version": "1.8.6",
        "state_dict": state,
    }


def published_yaml(variant: str, lightning_layout: bool = True) -> str:
    """The architecture part of the reference YAML (configs/wavtokenizer_smalldata_frame*.yaml)."""
    dowmsamples, n_fft, hop = VARIANTS[variant]
    parts = f"""\
feature_extractor:
  class_path: decoder.feature_extractors.EncodecFeatures
  init_args:
    encodec_model: encodec_24khz
    bandwidths: [6.6, 6.6, 6.6, 6.6]
    train_codebooks: true
    num_quantizers: 1
    dowmsamples: {dowmsamples}
    vq_bins: 4096
    vq_kmeans: 200
backbone:
  class_path: decoder.models.VocosBackbone
  init_args:
    input_channels: 512
    dim: 768
    intermediate_dim: 2304
    num_layers: 12
    adanorm_num_embeddings: 4
head:
  class_path: decoder.heads.ISTFTHead
  init_args:
    dim: 768
    n_fft: {n_fft}
    hop_length: {hop}
    padding: same
"""
    if not lightning_layout:
        return parts
    indented = "".join(f"    {line}\n" for line in parts.splitlines())
    return (
        "seed_everything: 3407\nmodel:\n  class_path: decoder.experiment.WavTokenizer\n"
        "  init_args:\n    sample_rate: 24000\n    mel_loss_coeff: 45\n"
        + indented
        + "trainer:\n  max_steps: 20000000\n"
    )
