"""Training: the WavTokenizer model, its trainer, checkpoints and encoding to Zarr.

Public API of the model part:

    load_tokenizer(path, config=None) -> Tokenizer      inference: encode / embed / decode
    load_models(path, config=None) -> LoadedModels       generator (+ discriminators) to train on
    build_generator(config) -> Generator                 encoder → VQ → backbone → ISTFT head
    build_discriminators(config) -> Discriminators       MPD, MRD, DAC (as configured)
    save_tokenizer(path, config, generator, discriminators=None, extra=None)

The trainer:

    train(config, shards=OUT, run_dir=RUN_DIR, resume=False, init_from=None,
          init_config=None, until_step=None) -> TrainResult

Encoding to the feature store:

    encode_features(checkpoint, shards, store=None, config=None, ...) -> EncodeSummary
"""

from sonotype.lazy import lazy_attributes
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

# The trainer pulls in the shard reader and TensorBoard; imported on first use so that
# `load_tokenizer` stays light.
__getattr__, __dir__ = lazy_attributes(
    __name__, {"train": "training.loop", "TrainResult": "training.result"}
)

__all__ = [
    "DiscriminatorOutput",
    "Discriminators",
    "EncodeSummary",
    "Generator",
    "GeneratorOutput",
    "LoadedModels",
    "Tokenizer",
    "TrainResult",
    "build_discriminators",
    "build_generator",
    "encode_features",
    "load_models",
    "load_tokenizer",
    "save_tokenizer",
    "train",
    "unwrap",
]
