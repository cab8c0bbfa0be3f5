"""Trainer memory benchmark: micro-batches with accumulation against one batch; the 8 GB recipe.

    python -m benchmarks.train_memory                 # CPU: ~15 min on 2 shared cores
    python -m benchmarks.train_memory --quick         # the tiny model, a smoke test (~1 min)
    python -m benchmarks.train_memory --device cuda   # on a GPU: 3 s crops, device memory

The model is the published 40 tokens/s size (72 M generator parameters; MPD, MRD and
DAC discriminators, 84 M) trained by `training.step.train_step`, the trainer's own
step, on synthetic crops (tones, clicks and noise; the reader is not measured here).
Every case runs in a fresh process, so its peak RSS is its own:

1. Side by side, effective batch 16: plain fp32 batch 16, and micro-batches of 1, 2
   and 4 accumulated 16, 8 and 4 times. Each process takes a one-crop warm-up step,
   one timed step (samples/s, peak RSS = VmHWM after it), then one step under the
   profiler (peak tensor memory, below).
2. Recipe cases, memory only (a one-crop warm-up step, then the profiled step): bf16
   autocast and activation checkpointing at micro-batch 4, and micro-batch 1 at two crop
   lengths (fp32, and bf16 with checkpointing), to fit
   activation memory per second of audio and extrapolate it to the reference's 3 s.

Peak tensor memory is what a GPU's `torch.cuda.max_memory_allocated` counts: the
bytes of live tensors at the worst moment of a step. On a CPU it is measured with
`torch.profiler(profile_memory=True)`, whose allocation events carry the running total
of bytes allocated inside the profiled window; the peak is that total's maximum plus
the tensors alive when the window opens (weights, buffers, optimizer states).
Accumulation steps are profiled with 2 micro-batches: from the second one on, the
gradients already exist while a micro-batch runs, and the peak no longer changes.
On a GPU the harness reports `torch.cuda.max_memory_allocated` directly.

A step of this model takes the CPU of this machine some 5 s per second of audio, so
the CPU run uses 1 s crops (40 frames) and the recipe extrapolates to 3 s.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

EFFECTIVE_BATCH = 16
SAMPLE_RATE = 24000
GIB = 2**30


@dataclass(frozen=True)
class Case:
    name: str
    micro_batch: int
    accumulation: int
    crop_samples: int
    precision: str = "fp32"  # fp32, bf16 or fp16
    checkpointing: bool = False
    timed: bool = True  # warm-up + timed step; otherwise only the profiled step


def side_by_side(crop: int) -> list[Case]:
    """Plain fp32 batch 16 and micro-batches 1, 2, 4 accumulated to 16."""
    cases = [Case("fp32 batch 16", EFFECTIVE_BATCH, 1, crop)]
    for micro in (1, 2, 4):
        cases.append(
            Case(
                f"fp32 {micro} x {EFFECTIVE_BATCH // micro}", micro, EFFECTIVE_BATCH // micro, crop
            )
        )
    return cases


def recipe_cases(crop: int) -> list[Case]:
    """Memory-only cases behind the 8 GB recipe (two crop lengths for the per-second fit)."""
    return [
        Case("bf16 4 x 4", 4, 4, crop, "bf16", timed=False),
        Case("bf16 + ckpt 4 x 4", 4, 4, crop, "bf16", True, timed=False),
        Case("fp32 1 x 16, 2x crop", 1, 16, 2 * crop, timed=False),
        Case("bf16 1 x 16", 1, 16, crop, "bf16", timed=False),
        Case("bf16 1 x 16, 2x crop", 1, 16, 2 * crop, "bf16", timed=False),
        Case("bf16 + ckpt 1 x 16", 1, 16, crop, "bf16", True, timed=False),
        Case("bf16 + ckpt 1 x 16, 2x crop", 1, 16, 2 * crop, "bf16", True, timed=False),
    ]


# --- one case, in its own process -----------------------------------------------------


def run_case(case: Case, model: str, device_name: str) -> dict:
    """Build the models, take the case's steps, return its figures."""
    import torch

    from sonotype.config.load import CONFIGS_DIR, load_config
    from sonotype.config.model import ModelConfig
    from sonotype.config.train import TrainConfig
    from training.activation_checkpointing import enable_activation_checkpointing
    from training.codebook import CodebookStatistics
    from training.losses import LogMelSpectrogram
    from training.model import build_discriminators, build_generator
    from training.precision import autocast, make_scaler, resolve_precision
    from training.state import TrainState
    from training.step import StepSettings, train_step

    torch.manual_seed(0)
    device = torch.device(device_name)
    config = TrainConfig(model=load_config(ModelConfig, CONFIGS_DIR / "model" / f"{model}.yaml"))
    generator = build_generator(config.model)
    discriminators = build_discriminators(config.model)
    codebook = generator.quantizer
    codebook.initialize(
        0.05 * torch.randn_like(codebook.embed), torch.ones_like(codebook.cluster_size)
    )
    if case.checkpointing:
        enable_activation_checkpointing(generator, discriminators)
    generator.to(device).train()
    discriminators.to(device).train()
    dtype = resolve_precision(case.precision, device)
    state = TrainState(
        config=config,
        generator=generator,
        discriminators=discriminators,
        generator_optimizer=torch.optim.AdamW(generator.parameters(), lr=2e-4),
        discriminator_optimizer=torch.optim.AdamW(discriminators.parameters(), lr=2e-4),
        scaler=make_scaler(device, dtype),
    )
    settings = StepSettings(
        weights=config.losses.weights(),
        grad_clip_generator=1000.0,
        grad_clip_discriminator=10.0,
        autocast=lambda: autocast(device, dtype),
        log_mel=LogMelSpectrogram(SAMPLE_RATE).to(device),
    )
    crops = _crops(device)

    def step(micro: int, accumulation: int) -> None:
        batches = [crops(micro, case.crop_samples) for _ in range(accumulation)]
        statistics = CodebookStatistics.empty(codebook, 64, seed=0)
        train_step(state, batches, torch.tensor([0], device=device), True, settings, statistics)

    figures: dict = {"case": asdict(case), "device": device_name, "model": model}
    figures["parameters_m"] = sum(p.numel() for p in generator.parameters()) / 1e6
    figures["discriminator_parameters_m"] = (
        sum(p.numel() for p in discriminators.parameters()) / 1e6
    )
    step(1, 1)  # warm-up: optimizer states exist from here on, as in any later step
    if case.timed:
        _synchronize(device)
        started = time.perf_counter()
        step(case.micro_batch, case.accumulation)
        _synchronize(device)
        seconds = time.perf_counter() - started
        figures["step_s"] = seconds
        figures["samples_per_s"] = case.micro_batch * case.accumulation / seconds
        figures["peak_rss_mib"] = _peak_rss_mib()
    accumulation = min(case.accumulation, 2)
    # The profiler sees no free of a block allocated before it started: drop last step's
    # gradients first (the step would drop them anyway), so none is counted twice.
    state.generator_optimizer.zero_grad(set_to_none=True)
    state.discriminator_optimizer.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        step(case.micro_batch, accumulation)
        figures["peak_tensor_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        figures["peak_tensor_mib"] = (
            _profiled_peak(lambda: step(case.micro_batch, accumulation), state) / 2**20
        )
    figures["resident_mib"] = _resident_bytes(state) / 2**20
    return figures


def _crops(device):
    """A maker of synthetic crops `[B, T]`: tones, clicks and noise, seeded."""
    import torch

    generator = torch.Generator().manual_seed(0)

    def make(batch: int, samples: int):
        t = torch.arange(samples) / SAMPLE_RATE
        frequency = 500 + 3000 * torch.rand(batch, 1, generator=generator)
        tone = 0.3 * torch.sin(2 * math.pi * frequency * t)
        clicks = (torch.rand(batch, samples, generator=generator) > 0.999).float() * 0.5
        noise = 0.05 * torch.randn(batch, samples, generator=generator)
        return (tone + clicks + noise).to(device)

    return make


def _resident_bytes(state) -> int:
    """Bytes of weights, buffers, gradients and optimizer states (alive between steps)."""
    import torch

    tensors = []
    for module in (state.generator, state.discriminators):
        tensors += list(module.parameters()) + list(module.buffers())
        tensors += [p.grad for p in module.parameters() if p.grad is not None]
    for optimizer in (state.generator_optimizer, state.discriminator_optimizer):
        for values in optimizer.state.values():
            tensors += [v for v in values.values() if isinstance(v, torch.Tensor)]
    return sum(t.numel() * t.element_size() for t in tensors)


def _profiled_peak(work, state) -> int:
    """Peak bytes of live tensors while `work()` runs on the CPU (see the module docstring)."""
    from torch.profiler import ProfilerActivity, profile

    before = _resident_bytes(state)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        work()
    with tempfile.TemporaryDirectory() as directory:
        trace = Path(directory) / "trace.json"
        profiler.export_chrome_trace(str(trace))
        events = json.loads(trace.read_text())["traceEvents"]
    totals = [e["args"]["Total Allocated"] for e in events if e.get("name") == "[memory]"]
    return before + max([0, *totals])


def _synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_rss_mib() -> float:
    """Peak RSS of this process (Linux VmHWM; not ru_maxrss, which survives execve)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


# --- driver ---------------------------------------------------------------------------


def _run_child(case: Case, model: str, device: str, threads: int) -> dict:
    command = [
        sys.executable,
        "-m",
        "benchmarks.train_memory",
        "--child",
        json.dumps(asdict(case)),
        "--model",
        model,
        "--device",
        device,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "SONOTYPE_PROGRESS": "0"}
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    return json.loads(output.stdout.strip().splitlines()[-1])


def fit_per_second(short: dict, long: dict) -> tuple[float, float]:
    """(fixed MiB, MiB per second of audio per crop) through two crop lengths of one case."""
    seconds = [r["case"]["crop_samples"] / SAMPLE_RATE for r in (short, long)]
    slope = (long["peak_tensor_mib"] - short["peak_tensor_mib"]) / (seconds[1] - seconds[0])
    slope /= short["case"]["micro_batch"]
    return short["peak_tensor_mib"] - slope * seconds[0] * short["case"]["micro_batch"], slope


def report(results: list[dict]) -> str:
    """Markdown tables of the side-by-side and recipe cases, with ratios and extrapolation."""
    timed = [r for r in results if r["case"]["timed"]]
    base = timed[0]
    crop = base["case"]["crop_samples"]
    lines = [
        f"Model: {base['model']} ({base['parameters_m']:.1f} M generator + "
        f"{base['discriminator_parameters_m']:.1f} M discriminator parameters), device "
        f"{base['device']}, crops of {crop} samples ({crop / SAMPLE_RATE:g} s), effective "
        f"batch {EFFECTIVE_BATCH}.",
        "",
        "| case | samples/s | peak RSS MiB | peak tensors MiB | RSS / batch 16 | "
        "tensors / batch 16 | speed / batch 16 |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in timed:
        lines.append(
            f"| {r['case']['name']} | {r['samples_per_s']:.3f} | {r['peak_rss_mib']:.0f} | "
            f"{r['peak_tensor_mib']:.0f} | {r['peak_rss_mib'] / base['peak_rss_mib']:.2f} | "
            f"{r['peak_tensor_mib'] / base['peak_tensor_mib']:.2f} | "
            f"{r['samples_per_s'] / base['samples_per_s']:.2f} |"
        )
    lines += [
        "",
        "| case | crop samples | peak tensors MiB | weights, grads, Adam MiB |",
        "|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['case']['name']} | {r['case']['crop_samples']} | "
            f"{r['peak_tensor_mib']:.0f} | {r['resident_mib']:.0f} |"
        )
    by_name = {r["case"]["name"]: r for r in results}
    pairs = [
        (name, f"{name}, 2x crop") for name in ("fp32 1 x 16", "bf16 1 x 16", "bf16 + ckpt 1 x 16")
    ]
    lines.append("")
    for short, long in pairs:
        if short in by_name and long in by_name:
            fixed, slope = fit_per_second(by_name[short], by_name[long])
            estimates = ", ".join(
                f"micro-batch {m}: {(fixed + slope * 3.0 * m) / 1024:.2f} GiB" for m in (1, 2, 4)
            )
            lines.append(
                f"- {short.rsplit(' 1 x', 1)[0]}: fixed {fixed:.0f} MiB + {slope:.0f} MiB per "
                f"second of audio per crop → 3 s crops, estimated peak tensors: {estimates}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--model", default="wavtokenizer-40", help="model preset")
    parser.add_argument("--crop-samples", type=int, help="default: 24000 on CPU, 72000 on GPU")
    # One thread: on a shared 2-core machine a second OpenMP thread spins against the
    # other jobs and made a step of this model six times slower (64 s against 11 s).
    parser.add_argument("--threads", type=int, default=1, help="torch threads per case (CPU)")
    parser.add_argument("--quick", action="store_true", help="tiny model, short crops")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
        print(json.dumps(run_case(Case(**json.loads(args.child)), args.model, args.device)))
        return 0
    model = "tiny" if args.quick else args.model
    crop = args.crop_samples or (72000 if args.device.startswith("cuda") else 24000)
    if args.quick:
        crop = 1200
    cases = side_by_side(crop) + recipe_cases(crop)
    results = []
    for case in cases:
        started = time.perf_counter()
        results.append(_run_child(case, model, args.device, args.threads))
        print(f"{case.name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
