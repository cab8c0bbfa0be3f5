"""The trainer's readers: training crops, held-out validation shards, codebook-initialisation crops.

Reading never touches torch's global random generator (`forever` and
`codebook_batches` read under `torch.random.fork_rng`): a DataLoader draws its base
seed from that generator when it starts, and a resumed run starts one mid-epoch where
an uninterrupted run did not, so without the fork the two runs' dropout and condition
draws would part.
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from shards import Batch, ShardIndex, ShardLoader
from shards.plan import derive_seed
from shards.select import SegmentFilter
from sonotype.config.train import TrainConfig
from sonotype.errors import ConfigError, SonotypeError

logger = logging.getLogger(__name__)


@dataclass
class Readers:
    """The training reader and, when validation is on, the validation reader.

    Attributes:
        train: training crops (random, in epochs; its position goes in checkpoints).
        validation: fixed crops of the held-out shards, or None.
        n_train_shards: shards read for training.
        n_validation_shards: shards held out.
    """

    train: ShardLoader
    validation: ShardLoader | None
    n_train_shards: int
    n_validation_shards: int


def open_readers(config: TrainConfig, shards: str) -> Readers:
    """Index the shards (the catalog and `data.filters`), hold some out, open the readers.

    Raises:
        ConfigError: the shards' rate is not the model's, or too few shards to hold out.
        SonotypeError: no catalog, no selected segment, or too few crops for a batch.
    """
    hop = config.model.hop_length
    index = ShardIndex.from_catalog(shards, SegmentFilter.from_config(config.data.filters))
    if index.sample_rate != config.model.sample_rate:
        raise ConfigError(
            f"{shards}: shards hold {index.sample_rate} Hz audio, the model codes "
            f"{config.model.sample_rate} Hz (model.sample_rate); re-ingest or pick a model"
        )
    held_out = config.validation.held_out_shards
    validation = None
    n_validation = 0
    if held_out:
        if held_out >= len(index.urls):
            raise ConfigError(
                f"validation.held_out_shards is {held_out} but {shards} has "
                f"{len(index.urls)} shard(s) with selected segments; hold out fewer, or set "
                "validation.held_out_shards=0 (no validation)"
            )
        index, validation_index = index.hold_out(held_out, seed=config.data.seed)
        n_validation = len(validation_index.urls)
        if config.validation.every_steps:
            validation = ShardLoader(validation_index, config.data, mode="eval", hop_samples=hop)
    train = ShardLoader(index, config.data, mode="train", hop_samples=hop)
    return Readers(train, validation, len(index.urls), n_validation)


def forever(loader: ShardLoader) -> Iterator[Batch]:
    """The loader's batches, epoch after epoch, read without touching torch's global RNG.

    Raises:
        SonotypeError: two epochs in a row delivered nothing.
    """
    empty_epochs = 0
    while empty_epochs < 2:  # one may be empty: a run resumed at the end of an epoch
        iterator = iter(loader)
        empty_epochs += 1
        while True:
            with torch.random.fork_rng(devices=[]):
                batch = next(iterator, None)
            if batch is None:
                break
            empty_epochs = 0
            yield batch
    raise SonotypeError("the training reader delivered no batch in a whole epoch")


def codebook_batches(config: TrainConfig, index: ShardIndex) -> Iterator[Batch]:
    """`codebook.init_batches` training batches from a reader seeded apart from training's."""
    reader = config.data.model_copy(update={"seed": derive_seed(config.data.seed, "codebook")})
    loader = ShardLoader(index, reader, mode="train", hop_samples=config.model.hop_length)
    for number, batch in enumerate(forever(loader)):
        if number == config.codebook.init_batches:
            return
        yield batch
