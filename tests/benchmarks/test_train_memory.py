"""The trainer benchmark's measurements: peak tensor memory (profiler), the per-second fit."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from benchmarks.train_memory import _profiled_peak, _resident_bytes, fit_per_second

MB4 = 4_000_000  # a 1000 x 1000 float32 tensor


def test_the_profiled_peak_is_resident_tensors_plus_the_worst_moment():
    torch.manual_seed(0)
    linear = nn.Linear(1000, 1000)
    state = SimpleNamespace(
        generator=linear,
        discriminators=nn.Linear(1, 1),
        generator_optimizer=torch.optim.SGD(linear.parameters()),
        discriminator_optimizer=torch.optim.SGD([nn.Parameter(torch.zeros(1))]),
    )
    resident = _resident_bytes(state)
    assert resident == MB4 + 4000 + 2 * 4  # weight, bias, the second linear's weight and bias
    x = torch.randn(1000, 1000)

    def work():
        # Element-wise ops only: a matrix product may allocate a packing workspace.
        a = x * 2  # +4 MB
        b = a + 1  # +4 MB: two alive, the peak
        del a
        c = b * 3  # +4 MB after -4 MB
        del b, c

    # Give or take the few bytes of small bookkeeping tensors that ops allocate.
    assert abs(_profiled_peak(work, state) - (resident + 2 * MB4)) < 1024


def test_fit_per_second_through_two_crop_lengths():
    def figures(crop_samples: int, peak: float) -> dict:
        return {"case": {"crop_samples": crop_samples, "micro_batch": 2}, "peak_tensor_mib": peak}

    # 2 crops: 1000 MiB fixed + 2 x 300 MiB per second.
    fixed, slope = fit_per_second(figures(24000, 1600.0), figures(48000, 2200.0))
    assert fixed == pytest.approx(1000.0)
    assert slope == pytest.approx(300.0)
