"""Channel policy: mix, pick one, or each channel as its own stream."""

import numpy as np

from ingest.channels import MIX_CHANNEL, channel_problem, plan_streams, source_of, to_streams
from sonotype.config.ingest import ChannelsConfig

BLOCK = np.array([[0.2, 0.4, -0.6], [1.0, 0.0, 0.5]], np.float32)


def test_mix_is_the_mean_of_the_channels():
    streams = plan_streams(3, ChannelsConfig(policy="mix"))
    assert [(s.index, s.channel) for s in streams] == [(0, MIX_CHANNEL)]
    np.testing.assert_allclose(to_streams(BLOCK, streams), [[0.0], [0.5]], atol=1e-7)
    assert source_of(BLOCK, streams[0]).shape == (2, 3)


def test_pick_takes_one_channel():
    streams = plan_streams(3, ChannelsConfig(policy="pick", pick=2))
    assert [(s.index, s.channel) for s in streams] == [(0, 2)]
    np.testing.assert_array_equal(to_streams(BLOCK, streams), BLOCK[:, [2]])
    np.testing.assert_array_equal(source_of(BLOCK, streams[0]), BLOCK[:, 2])


def test_each_channel_becomes_a_stream():
    streams = plan_streams(3, ChannelsConfig(policy="each"))
    assert [(s.index, s.channel) for s in streams] == [(0, 0), (1, 1), (2, 2)]
    np.testing.assert_array_equal(to_streams(BLOCK, streams), BLOCK)


def test_mono_is_channel_zero_under_every_policy():
    for policy in ("mix", "pick", "each"):
        assert [(s.index, s.channel) for s in plan_streams(1, ChannelsConfig(policy=policy))] == [
            (0, 0)
        ]


def test_picking_a_missing_channel_is_a_problem_in_words():
    problem = channel_problem(1, ChannelsConfig(policy="pick", pick=1))
    assert problem == "channels.pick=1 asks for channel 1 but the recording has 1 channel(s)"
    assert channel_problem(2, ChannelsConfig(policy="pick", pick=1)) is None
