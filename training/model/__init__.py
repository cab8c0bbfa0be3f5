"""The WavTokenizer networks: encoder, quantizer, decoder backbone, ISTFT head, discriminators.

Shape notation used by every docstring in this package:

    B  batch size
    T  samples of a waveform (mono, at the model's sample rate)
    F  frames (tokens); F = ceil(T / hop), hop = product of the encoder strides
    D  latent dimension of a frame (512 in the published models)
    K  codebook size (4096 in the published models)
    H  hidden width of the decoder backbone (768 in the published models)

Waveforms are float `[B, T]`; latents follow the convolution layout `[B, D, F]`;
codes are int64 `[B, F]`. Modules take plain scalar arguments; `build.py` turns a
`ModelConfig` into modules.
"""

from training.model.build import build_discriminators, build_generator
from training.model.discriminators import DiscriminatorOutput, Discriminators
from training.model.generator import Generator, GeneratorOutput
from training.model.quantizer import QuantizerOutput, VectorQuantizer

__all__ = [
    "DiscriminatorOutput",
    "Discriminators",
    "Generator",
    "GeneratorOutput",
    "QuantizerOutput",
    "VectorQuantizer",
    "build_discriminators",
    "build_generator",
]
