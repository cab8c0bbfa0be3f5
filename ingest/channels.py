"""The channel policy: which mono streams a recording gives, and how blocks become those streams."""

from dataclasses import dataclass

import numpy as np

from sonotype.config.ingest import ChannelsConfig

MIX_CHANNEL = -1
"""`channel` of a stream that mixes all the channels of a multi-channel recording."""


@dataclass(frozen=True)
class Stream:
    """One mono stream of a recording.

    Attributes:
        index: the stream's number within the recording (0..n-1), part of segment keys.
        channel: the source channel it is, or MIX_CHANNEL for the mean of all channels.
    """

    index: int
    channel: int


def channel_problem(n_channels: int, config: ChannelsConfig) -> str | None:
    """Why the policy cannot apply to a recording with `n_channels`, or None."""
    if config.policy == "pick" and config.pick >= n_channels:
        return (
            f"channels.pick={config.pick} asks for channel {config.pick} "
            f"but the recording has {n_channels} channel(s)"
        )
    return None


def plan_streams(n_channels: int, config: ChannelsConfig) -> list[Stream]:
    """The streams of a recording with `n_channels` under the policy.

    A mono recording gives one stream of channel 0 whatever the policy. Call
    `channel_problem` first: picking a channel the recording lacks is a bad input.
    """
    if n_channels == 1:
        return [Stream(0, 0)]
    if config.policy == "mix":
        return [Stream(0, MIX_CHANNEL)]
    if config.policy == "pick":
        return [Stream(0, config.pick)]
    return [Stream(index, index) for index in range(n_channels)]


def to_streams(block: np.ndarray, streams: list[Stream]) -> np.ndarray:
    """The streams' samples of a source block.

    Args:
        block: float32 `[n, channels]`.
        streams: from `plan_streams`.

    Returns:
        float32 `[n, len(streams)]`, C-contiguous.
    """
    if len(streams) == block.shape[1]:
        return np.ascontiguousarray(block)
    if streams[0].channel == MIX_CHANNEL:
        # Column by column rather than a matrix product: no BLAS threads, and the same
        # float32 sums on every machine.
        mix = np.add(block[:, 0], block[:, 1])
        for channel in range(2, block.shape[1]):
            mix += block[:, channel]
        mix *= np.float32(1.0 / block.shape[1])
        return mix[:, None]
    return np.ascontiguousarray(block[:, [streams[0].channel]])


def source_of(block: np.ndarray, stream: Stream) -> np.ndarray:
    """The source channels a stream is made from: `[n, channels]` for a mix, `[n]` otherwise."""
    return block if stream.channel == MIX_CHANNEL else block[:, stream.channel]
