"""What a feature store is made of: names, chunk sizes, codec, and a new store's group.

The layout itself is described in `analysis.store`. These live apart from it so that
the modules `FeatureStore` is built from can import them without an import cycle;
other code imports the public names from `analysis.store`, which re-exports them.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import zarr
from zarr.codecs import BloscCodec, BloscShuffle

from analysis import segment_table
from sonotype import contracts
from sonotype.errors import SonotypeError

FRAME: str = "frame"
SEGMENT: str = "segment"
DIM: str = "dim"
UNLABELLED: int = -1
"""Label of a row not (yet) assigned to a sonotype."""

DEFAULT_FRAMES_PER_CHUNK = 16384
DEFAULT_SEGMENTS_PER_CHUNK = 4096
_CLEVEL = 3


def compressor() -> BloscCodec:
    """The codec of every array: Blosc zstd after byte shuffle (why: `analysis.store`)."""
    return BloscCodec(cname="zstd", clevel=_CLEVEL, shuffle=BloscShuffle.shuffle)


def checked_level(level: str) -> str:
    """`level` itself, once it is known to be "frame" or "segment".

    Raises:
        SonotypeError: any other level.
    """
    if level not in (FRAME, SEGMENT):
        raise SonotypeError(f"level must be {FRAME!r} or {SEGMENT!r}, got {level!r}")
    return level


@dataclass(frozen=True)
class StoreIdentity:
    """What a feature store was made from; an existing store must match it to be reused."""

    dim: int
    frame_rate: float
    sample_rate: int
    codebook_size: int
    checkpoint_sha256: str
    model_config: Mapping[str, Any]


def create_group(
    url: str, identity: StoreIdentity, frames_per_chunk: int, segments_per_chunk: int
) -> zarr.Group:
    """Write an empty feature store at `url`, replacing any group and segment table there.

    Args:
        url: where the store goes (`OUT/features.zarr`; path or fsspec URL).
        identity: model and rates the features come from.
        frames_per_chunk: rows per chunk of the frame arrays.
        segments_per_chunk: rows per chunk of `pooled`.

    Returns:
        The new group, with no rows and every attribute set.
    """
    group = zarr.open_group(url, mode="w", zarr_format=3)
    common = {"compressors": compressor(), "fill_value": 0}
    group.create_array(
        contracts.TOKENS, shape=(0,), chunks=(frames_per_chunk,), dtype="int16",
        dimension_names=(FRAME,), **common,
    )  # fmt: skip
    group.create_array(
        contracts.EMBEDDINGS, shape=(0, identity.dim), chunks=(frames_per_chunk, identity.dim),
        dtype="float16", dimension_names=(FRAME, DIM), **common,
    )  # fmt: skip
    group.create_array(
        contracts.LOUDNESS, shape=(0,), chunks=(frames_per_chunk,), dtype="float16",
        dimension_names=(FRAME,), compressors=compressor(), fill_value=float("nan"),
    )  # fmt: skip
    group.create_array(
        contracts.POOLED, shape=(0, identity.dim), chunks=(segments_per_chunk, identity.dim),
        dtype="float32", dimension_names=(SEGMENT, DIM), **common,
    )  # fmt: skip
    segment_table.remove(contracts.features_table_path(url))
    # The attributes come last, in one write: a store killed while being created has
    # none and is created again (see `is_unfinished` in `analysis.store`).
    group.update_attributes(
        {
            contracts.ATTR_CHECKPOINT_HASH: identity.checkpoint_sha256,
            contracts.ATTR_MODEL_CONFIG: dict(identity.model_config),
            contracts.ATTR_SAMPLE_RATE: int(identity.sample_rate),
            contracts.ATTR_FRAME_RATE: float(identity.frame_rate),
            contracts.ATTR_CODEBOOK_SIZE: int(identity.codebook_size),
            contracts.ATTR_SHARDS: [],
            contracts.ATTR_N_FRAMES: 0,
            contracts.ATTR_N_SEGMENTS: 0,
            contracts.ATTR_EVERY_CHUNK_WRITTEN: True,
        }
    )
    return group
