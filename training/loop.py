"""The trainer: `train(config, shards=OUT, run_dir=RUN_DIR) -> TrainResult`, read top to bottom.

Setup (device and process group, run directory, seeds, models, optimizers, scaler,
data, resume, codebook initialisation), then the loop. Each iteration takes k
micro-batches, samples the step's condition row, sets the learning rate, and calls
`train_step` (discriminator then generator micro-steps, clip, step; see
`training.step`); then the codebook's EMA update and dead-code respawn, logging,
validation and checkpoints. Rank-0 side effects sit behind `if is_main_process():`.
One loop serves a single process and DDP under torchrun.
"""

import contextlib
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch

from shards import ShardLoader
from shards.plan import derive_seed
from sonotype.config.load import save_config
from sonotype.config.model import ModelConfig
from sonotype.config.train import TrainConfig
from sonotype.contracts import RunLayout
from sonotype.errors import CheckpointMismatchError
from sonotype.progress import progress_bar
from training.activation_checkpointing import enable_activation_checkpointing
from training.checkpoint import save_tokenizer
from training.codebook import (
    CodebookStatistics,
    LatentReservoir,
    describe_threshold,
    initialize_codebook,
    update_codebook,
)
from training.data import codebook_batches, forever, open_readers
from training.distributed import (
    any_rank,
    barrier,
    init_distributed,
    is_main_process,
    mean_over_ranks,
    quiet_unless_main,
    rank,
    shutdown_distributed,
    unwrap,
    world_size,
    wrap_ddp,
)
from training.encoder_init import initialize_encoder
from training.initial import architecture_differences, build_models
from training.losses import LogMelSpectrogram
from training.metrics_log import MetricsLog, peak_memory_mb
from training.model import Generator
from training.precision import (
    autocast,
    make_scaler,
    precision_name,
    resolve_device,
    resolve_precision,
)
from training.result import TrainResult
from training.schedule import learning_rate, set_learning_rate
from training.signals import StopRequest
from training.state import (
    TrainState,
    checkpoints_to_resume,
    read_training_checkpoint,
    weights_digest,
    write_checkpoint,
)
from training.step import StepSettings, train_step
from training.validation import evaluate

logger = logging.getLogger(__name__)


def train(
    config: TrainConfig,
    *,
    shards: str,
    run_dir: str,
    resume: bool = False,
    init_from: str | Path | None = None,
    init_config: str | Path | None = None,
    until_step: int | None = None,
) -> TrainResult:
    """Train (or fine-tune) the tokenizer on crops streamed from `shards`.

    Args:
        config: the training config.
        shards: the output root written by ingest (catalog and shards).
        run_dir: where checkpoints, the export, metrics and the config go (local).
        resume: continue from the run directory's last checkpoint, exactly.
        init_from: start from this checkpoint's weights (sonotype or published `.ckpt`).
        init_config: the YAML of a published `init_from` checkpoint.
        until_step: stop (with a checkpoint) at this step, before `optim.max_steps`; the
            schedule still runs to `max_steps` (jobs cut into time-limited pieces).

    Returns:
        A `TrainResult`.

    Raises:
        OutputConflictError: the run directory has checkpoints and `resume` is False.
        CheckpointMismatchError: nothing to resume, or a checkpoint that does not fit.
        ConfigError: contradictory options or an unusable device.
        SonotypeError: the shards cannot be read as configured (see `shards`).
    """
    # --- setup: device, process group, run directory --------------------------------
    device = resolve_device(config.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    joined = init_distributed(device)
    try:
        with quiet_unless_main():  # ranks other than 0 log warnings and errors only
            return _train(
                config,
                device,
                shards,
                RunLayout(run_dir),
                resume,
                init_from,
                init_config,
                until_step,
            )
    finally:
        if joined:
            shutdown_distributed()


def _train(
    config: TrainConfig,
    device: torch.device,
    shards: str,
    layout: RunLayout,
    resume: bool,
    init_from: str | Path | None,
    init_config: str | Path | None,
    until_step: int | None,
) -> TrainResult:
    started = time.perf_counter()
    checkpoints = checkpoints_to_resume(layout, resume, init_from is not None)

    # --- models, optimizers, scaler --------------------------------------------------
    torch.manual_seed(config.seed)  # the same initial weights on every rank
    generator, discriminators = build_models(config.model, init_from, init_config)
    if config.activation_checkpointing:
        n_blocks = enable_activation_checkpointing(generator, discriminators)
        logger.info("activation checkpointing on %d blocks", n_blocks)
    generator.to(device).train()
    discriminators.to(device).train()
    optim = config.optim
    adamw = {"lr": optim.lr, "betas": optim.betas, "eps": optim.eps}
    adamw["weight_decay"] = optim.weight_decay
    # Every discriminator, DAC's included, is in the optimizer (the reference's DAC
    # discriminator never trained: the optimizer held another instance).
    state = TrainState(
        config=config,
        generator=wrap_ddp(generator, device),
        discriminators=wrap_ddp(discriminators, device),
        generator_optimizer=torch.optim.AdamW(generator.parameters(), **adamw),
        discriminator_optimizer=torch.optim.AdamW(discriminators.parameters(), **adamw),
        scaler=make_scaler(device, dtype := resolve_precision(config.precision, device)),
    )
    quantizer = generator.quantizer
    if config.codebook.dead_code_threshold is not None:
        quantizer.threshold_ema_dead_code = config.codebook.dead_code_threshold
    if config.codebook.ema_decay is not None:
        quantizer.decay = config.codebook.ema_decay

    # --- data: the training reader, held-out validation shards ----------------------
    readers = open_readers(config, shards)
    loader = readers.train
    k = optim.accumulation_steps
    samples_per_step = config.data.batch_size * k * world_size()
    frames_per_step = samples_per_step * (loader.crop_length // config.model.hop_length)
    stop_at = min(until_step or optim.max_steps, optim.max_steps)

    # --- resume, or seed a new run --------------------------------------------------
    if resume:
        path = checkpoints[-1][1]
        payload = read_training_checkpoint(path)
        differences = architecture_differences(
            ModelConfig.model_validate(payload["model_config"]), config.model
        )
        if differences:
            raise CheckpointMismatchError(
                f"{path}: the run's model differs from the checkpoint's: " + "; ".join(differences)
            )
        position = state.load_state_dict(payload, rank(), path)
        del payload
        if state.step < stop_at:
            loader.load_state_dict(position)
            logger.info("resumed from %s at step %d", path, state.step)
        else:
            # Nothing left to train: the reader will not read, so shards added since
            # (a new year in the same OUT) do not make the finished run unresumable.
            logger.info("%s: the run already reached step %d; nothing to train", path, state.step)
    else:
        run_seed = derive_seed(config.seed, "train", rank())
        torch.manual_seed(run_seed)
        np.random.seed(run_seed % 2**32)
        if not quantizer.is_initialized:
            new_encoder = config.encoder_init.from_data and init_from is None
            _seed_codebook(config, generator, loader, device, frames_per_step, new_encoder)
    warning = describe_threshold(
        quantizer.threshold_ema_dead_code, frames_per_step, quantizer.codebook_size
    )
    if warning and is_main_process():
        logger.warning("%s", warning)

    # --- run directory files, metrics, what the loop needs ---------------------------
    metrics_log = None
    if is_main_process():
        Path(layout.root).mkdir(parents=True, exist_ok=True)
        save_config(config, layout.config, "sonotype train")
        metrics_log = MetricsLog(layout, config.logging.tensorboard, state.step if resume else None)
        logger.info(
            "training on %s, %d rank(s), %s; %d train / %d validation shards; "
            "%d crops of %d samples per step (%d x %d micro-batches x %d ranks)",
            device,
            world_size(),
            precision_name(dtype),
            readers.n_train_shards,
            readers.n_validation_shards,
            samples_per_step,
            loader.crop_length,
            config.data.batch_size,
            k,
            world_size(),
        )
    validation_loader = readers.validation
    log_mel = LogMelSpectrogram(config.model.sample_rate).to(device)
    settings = StepSettings(
        weights=config.losses.weights(),
        grad_clip_generator=optim.grad_clip_generator,
        grad_clip_discriminator=optim.grad_clip_discriminator,
        autocast=lambda: autocast(device, dtype),
        log_mel=log_mel,
    )
    n_conditions = config.model.backbone.n_conditions
    batches = forever(loader)
    logged: dict[str, float] = {}
    last_checkpoint = export = None
    log_time, log_step = time.perf_counter(), state.step
    stop = StopRequest()

    # --- the loop --------------------------------------------------------------------
    bar_context = progress_bar(optim.max_steps, "steps", "train")
    with stop, bar_context if is_main_process() else _SilentBar() as bar:
        bar.n = bar.last_print_n = state.step  # a resumed run's bar starts where it stopped
        while state.step < stop_at:
            step = state.step
            micro_batches = [next(batches).wav.to(device, non_blocking=True) for _ in range(k)]
            # The reference draws one AdaLayerNorm row per step; from the CPU generator,
            # whose state the checkpoint keeps.
            condition = torch.randint(n_conditions or 1, (1,)).to(device)
            lr = learning_rate(
                step, optim.lr, optim.warmup_steps, optim.max_steps, optim.min_lr_ratio
            )
            set_learning_rate(state.generator_optimizer, lr)
            set_learning_rate(state.discriminator_optimizer, lr)
            adversarial = step >= config.losses.mel_only_warmup_steps
            quantize = step >= config.losses.unquantized_warmup_steps
            if step == config.losses.unquantized_warmup_steps > 0:
                # The codes did not follow the encoder while it learned unquantized.
                _seed_codebook(config, generator, loader, device, frames_per_step, False)
            statistics = CodebookStatistics.empty(
                quantizer,
                config.codebook.respawn_candidates,
                seed=derive_seed(config.seed, "candidates", step, rank()),
            )

            # Discriminator micro-steps, clip, step; generator micro-steps, clip, step.
            terms = train_step(
                state, micro_batches, condition, adversarial, settings, statistics, quantize
            )

            # The codebook: one EMA update from every micro-batch of every rank, respawn.
            respawn_every = config.codebook.respawn_every_steps
            terms |= update_codebook(
                quantizer,
                statistics,
                respawn=bool(respawn_every) and (step + 1) % respawn_every == 0,
                seed=derive_seed(config.seed, "respawn", step),
            )
            state.step = step + 1
            bar.update(1)

            if state.step % config.logging.every_steps == 0 or state.step == stop_at:
                # .item() waits for the device: only at log steps (nanoGPT).
                values = mean_over_ranks(terms, device)
                now = time.perf_counter()
                values["lr/generator"] = values["lr/discriminator"] = lr
                speed = samples_per_step * (state.step - log_step) / max(now - log_time, 1e-9)
                values["speed/samples_per_s"] = speed
                values["memory/peak_mb"] = peak_memory_mb(device)
                values["time_s"] = state.elapsed_s + now - started
                log_time, log_step = now, state.step
                logged |= values
                if is_main_process():
                    metrics_log.write(state.step, "train", values)
                    bar.set_postfix_str(f"mel {values['loss/mel']:.3f}", refresh=False)

            is_last = state.step == optim.max_steps
            every = config.validation.every_steps
            if validation_loader is not None and (state.step % every == 0 or is_last):
                validation_loader.set_epoch(0)  # the same crops every time, from the start
                with torch.random.fork_rng(devices=[]):  # validation draws no training RNG
                    values = evaluate(
                        unwrap(state.generator),
                        validation_loader,
                        log_mel,
                        device,
                        config.validation.max_batches,
                        autocast(device, dtype),
                    )
                values["time_s"] = state.elapsed_s + time.perf_counter() - started
                collapse = config.validation.codebook_collapse(
                    values["val/codebook_usage"], values["val/codebook_perplexity"]
                )
                values["val/codebook_collapsed"] = float(collapse is not None)
                logged |= values
                if is_main_process():
                    metrics_log.write(state.step, "val", values)
                    logger.info("step %d: %s", state.step, _brief(values))
                    if collapse is not None:
                        logger.warning("step %d: %s", state.step, collapse)

            # A signal on any rank stops every rank, after the same step.
            stopping = any_rank(stop.requested, device)
            if state.step % config.checkpoint.every_steps == 0 or state.step == stop_at or stopping:
                elapsed = state.elapsed_s + time.perf_counter() - started
                payload = state.state_dict(loader.state_dict(), elapsed)
                if is_main_process():
                    last_checkpoint = write_checkpoint(payload, layout, config.checkpoint.keep_last)
                    save_tokenizer(
                        layout.export,
                        config.model,
                        unwrap(state.generator),
                        extra={"step": state.step},
                    )
                    export = layout.export
                del payload
                barrier()
            if stopping:
                if is_main_process():
                    reason = stop.signal_name or "a signal on another rank"
                    logger.warning("stopping after step %d (%s)", state.step, reason)
                break

    if metrics_log is not None:
        metrics_log.close()
    if export is None and os.path.exists(layout.export):
        export = layout.export  # written by an earlier run (one resumed after its end)
    return TrainResult(
        run_dir=layout.root,
        step=state.step,
        max_steps=optim.max_steps,
        interrupted=state.step < stop_at,
        checkpoint=last_checkpoint,
        export=export,
        metrics=logged,
        elapsed_s=state.elapsed_s + time.perf_counter() - started,
        weights_digest=weights_digest(state),
    )


class _SilentBar(contextlib.nullcontext):
    """What ranks other than 0 get instead of a progress bar."""

    n = last_print_n = 0

    def __enter__(self) -> "_SilentBar":
        return self

    def update(self, n: int = 1) -> None:
        """Nothing to draw."""

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        """Nothing to draw."""


def _seed_codebook(
    config: TrainConfig,
    generator: Generator,
    loader: ShardLoader,
    device: torch.device,
    frames_per_step: int,
    normalise_encoder: bool,
) -> None:
    """k-means of the codebook on encoder frames of a few batches from a reader seeded apart
    from training's; first, if `normalise_encoder`, the encoder's data-dependent init."""
    reservoir = LatentReservoir(
        config.codebook.reservoir_size,
        config.model.encoder.dimension,
        seed=derive_seed(config.seed, "reservoir", rank()),
    )
    crops = [batch.wav.to(device) for batch in codebook_batches(config, loader.index)]
    if normalise_encoder:
        initialize_encoder(generator.encoder, crops, config.encoder_init)
    with torch.no_grad():
        for wav in crops:
            reservoir.add(generator.latents(wav))
    iters = config.codebook.kmeans_iters
    initialize_codebook(
        generator.quantizer,
        reservoir,
        iters=config.model.quantizer.kmeans_iters if iters is None else iters,
        chunk_rows=config.codebook.kmeans_chunk_rows,
        frames_per_step=frames_per_step,
        seed=derive_seed(config.seed, "kmeans"),
    )


def _brief(values: dict[str, float]) -> str:
    return ", ".join(f"{key.removeprefix('val/')} {value:.4g}" for key, value in values.items())
