"""Training: the WavTokenizer model, its trainer, checkpoints and encoding to Zarr.

Public API of the model part:

    load_tokenizer(path, config=None) -> Tokenizer      inference: encode / embed / decode
    load_models(path, config=None) -> LoadedModels       generator (+ discriminators) to train on
    build_generator(config) -> Generator                 encoder → VQ → backbone → ISTFT head
    build_discriminators(config) -> Discriminators       MPD, MRD, DAC (as configured)
    save_tokenizer(path, config, generator, discriminators=None, extra=None)

Encoding to the feature store:

    encode_features(checkpoint, shards, store=None, config=None, ...) -> EncodeSummary
"""

from training.checkpoint import save_tokenizer, unwrap
from training.encode import EncodeSummary, encode_features
from training.load import LoadedModels, load_models
from training.model import (
    DiscriminatorOutput,
    Discriminators,
    Generator,
    GeneratorOutput,
    build_discriminators,
    build_generator,
)
from training.tokenizer import Tokenizer, load_tokenizer

__all__ = [
    "DiscriminatorOutput",
    "Discriminators",
    "EncodeSummary",
    "Generator",
    "GeneratorOutput",
    "LoadedModels",
    "Tokenizer",
    "build_discriminators",
    "build_generator",
    "encode_features",
    "load_models",
    "load_tokenizer",
    "save_tokenizer",
    "unwrap",
]
