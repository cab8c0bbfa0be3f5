"""Names, chunk sizes and codec shared by the feature store's modules.

They live apart from `analysis.store` so that the modules it is built from can import
them without an import cycle; other code imports them from `analysis.store`, which
re-exports them.
"""

from zarr.codecs import BloscCodec, BloscShuffle

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
