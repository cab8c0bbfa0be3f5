"""Config of `sonotype train`: model, data, optimiser, precision, losses, codebook, checkpoints.

The `model` section is a model preset name (`tiny` → `configs/model/tiny.yaml`) or an
inline model config: one level of composition, resolved by `expand_presets` before any
`--set model.x=y` override is applied, so overrides can reach into a named preset.
Every default here is the reference recipe (Ji et al. 2024, `jishengpeng/WavTokenizer:
decoder/experiment.py`) unless its description says otherwise.
"""

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from sonotype.config.base import StrictModel
from sonotype.config.load import read_yaml, resolve_preset
from sonotype.config.model import ModelConfig
from sonotype.config.reader import ReaderConfig
from sonotype.errors import ConfigError


class OptimConfig(StrictModel):
    """AdamW for the generator and the discriminators, warm-up then cosine decay."""

    lr: float = Field(default=2e-4, gt=0, description="peak learning rate of both optimisers")
    betas: tuple[float, float] = Field(default=(0.9, 0.999), description="AdamW betas")
    weight_decay: float = Field(
        default=0.01, ge=0, description="AdamW decoupled weight decay (torch's default)"
    )
    eps: float = Field(default=1e-8, gt=0, description="AdamW epsilon")
    warmup_steps: int = Field(default=0, ge=0, description="linear warm-up, optimizer steps")
    max_steps: int = Field(
        default=1_000_000, gt=0, description="optimizer steps of the run; the cosine ends here"
    )
    min_lr_ratio: float = Field(
        default=0.0, ge=0, le=1, description="final learning rate as a fraction of lr"
    )
    accumulation_steps: int = Field(
        default=1, ge=1, description="micro-batches (of data.batch_size) per optimizer step"
    )
    grad_clip_generator: float | None = Field(
        default=1000.0, gt=0, description="max global grad norm of the generator (DAC: 1e3)"
    )
    grad_clip_discriminator: float | None = Field(
        default=10.0, gt=0, description="max global grad norm of the discriminators (DAC: 10)"
    )

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(0.0 <= beta < 1.0 for beta in value):
            raise ValueError(f"two betas in [0, 1), got {value}")
        return value


class LossConfig(StrictModel):
    """Weights of the loss terms (the total is Σ weight · term) and the mel-only warm-up.

    Each weight is named after its term's log key without `loss/`. MPD and MRD terms are
    averaged over their sub-discriminators, DAC terms summed, as in the reference.
    """

    mel: float = Field(default=45.0, ge=0, description="log-mel L1 (reference: 45)")
    commit: float = Field(default=1000.0, ge=0, description="VQ commitment (reference: 1000)")
    gen_mpd: float = Field(default=1.0, ge=0, description="hinge generator loss, MPD")
    gen_mrd: float = Field(default=1.0, ge=0, description="hinge generator loss, MRD")
    gen_dac: float = Field(default=1.0, ge=0, description="least-squares generator loss, DAC")
    fm_mpd: float = Field(default=1.0, ge=0, description="feature matching, MPD")
    fm_mrd: float = Field(default=1.0, ge=0, description="feature matching, MRD")
    fm_dac: float = Field(default=1.0, ge=0, description="feature matching, DAC")
    disc_mpd: float = Field(default=1.0, ge=0, description="hinge discriminator loss, MPD")
    disc_mrd: float = Field(default=1.0, ge=0, description="hinge discriminator loss, MRD")
    disc_dac: float = Field(default=1.0, ge=0, description="least-squares disc. loss, DAC")
    mel_only_warmup_steps: int = Field(
        default=0,
        ge=0,
        description="first steps train the generator on mel + commitment only, no discriminators",
    )
    unquantized_warmup_steps: int = Field(
        default=0,
        ge=0,
        description="first steps decode the encoder's latents unquantized (the codebook "
        "still follows them), so the encoder learns from a direct reconstruction gradient",
    )

    def weights(self) -> dict[str, float]:
        """Log key of each loss term (`loss/mel`) → its weight."""
        fields = self.model_dump(exclude={"mel_only_warmup_steps", "unquantized_warmup_steps"})
        return {f"loss/{name}": float(value) for name, value in fields.items()}


class CodebookConfig(StrictModel):
    """Codebook initialisation (chunked k-means on a reservoir) and dead-code respawn."""

    reservoir_size: int = Field(
        default=32768, ge=1, description="encoder frames kept for the k-means initialisation"
    )
    init_batches: int = Field(
        default=8, ge=1, description="batches (per rank) whose encoder frames feed the reservoir"
    )
    kmeans_iters: int | None = Field(
        default=None, ge=0, description="Lloyd iterations; null: model.quantizer.kmeans_iters"
    )
    kmeans_chunk_rows: int = Field(
        default=4096, ge=1, description="frames per distance block of the k-means (memory bound)"
    )
    ema_decay: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="EMA decay of the codebook; null: model.quantizer.decay (0.99)",
    )
    dead_code_threshold: float | None = Field(
        default=None,
        ge=0,
        description=(
            "EMA frames per step under which a code is dead; null: "
            "model.quantizer.threshold_ema_dead_code. Keep it well below "
            "frames per optimizer step / codebook size"
        ),
    )
    respawn_every_steps: int = Field(
        default=1, ge=0, description="re-seed dead codes every N optimizer steps (0: never)"
    )
    respawn_candidates: int = Field(
        default=1024, ge=1, description="recent frames per rank that dead codes are re-seeded from"
    )


class EncoderInitConfig(StrictModel):
    """Data-dependent initialisation of a new run's encoder (`training.encoder_init`)."""

    from_data: bool = Field(
        default=True,
        description="normalise every encoder conv on real crops before the codebook's "
        "k-means (Salimans and Kingma 2016); off: PyTorch's default initialisation, whose "
        "latents barely vary and collapse the codebook",
    )
    batches: int = Field(
        default=2, ge=1, description="codebook batches (per rank) the normalisation is measured on"
    )
    latent_std: float = Field(
        default=0.1, gt=0, description="per-dimension standard deviation of the latents after it"
    )


class ValidationConfig(StrictModel):
    """Validation on whole held-out shards with soundscape metrics (no downloads)."""

    held_out_shards: int = Field(
        default=1, ge=0, description="shards held out of training for validation (0: none)"
    )
    every_steps: int = Field(default=1000, ge=0, description="validate every N steps (0: never)")
    max_batches: int | None = Field(
        default=50, ge=1, description="batches per validation pass (null: the whole held-out set)"
    )
    min_codebook_usage: float = Field(
        default=0.10,
        ge=0.0,
        le=1.0,
        description="share of codes a validation pass should use; less is logged as collapse",
    )
    min_codebook_perplexity: float = Field(
        default=16.0,
        ge=0.0,
        description="perplexity of the codes of a validation pass below which it is collapse",
    )

    def codebook_collapse(self, usage: float, perplexity: float) -> str | None:
        """Why the codebook of a validation pass counts as collapsed, or None if it does not.

        A collapsed codebook maps most sounds to a handful of codes: tokens then carry
        little, and sonotypes built on them cannot tell sounds apart.
        """
        problems = []
        if usage < self.min_codebook_usage:
            problems.append(f"{usage:.1%} of codes used (threshold {self.min_codebook_usage:.0%})")
        if perplexity < self.min_codebook_perplexity:
            problems.append(
                f"perplexity {perplexity:.1f} (threshold {self.min_codebook_perplexity:g})"
            )
        if not problems:
            return None
        return (
            "codebook collapse: " + ", ".join(problems) + "; train longer, or check "
            "codebook.init_batches and the dead-code threshold"
        )


class CheckpointConfig(StrictModel):
    """Full-state checkpoints for exact resume (plus the inference export beside them)."""

    every_steps: int = Field(default=1000, ge=1, description="checkpoint every N steps")
    keep_last: int = Field(default=3, ge=1, description="checkpoints kept; older ones removed")


class LoggingConfig(StrictModel):
    """Metrics to metrics.jsonl, metrics.csv and TensorBoard (rank 0 only)."""

    every_steps: int = Field(default=10, ge=1, description="log training metrics every N steps")
    tensorboard: bool = Field(default=True, description="also write TensorBoard event files")


class TrainConfig(StrictModel):
    """Everything `sonotype train` needs besides the shards, the run directory and flags."""

    model: ModelConfig = Field(
        default_factory=ModelConfig,
        description="a preset name in configs/model/ (tiny, wavtokenizer-40, ...) or an inline "
        "model config; the default is the published 40 tokens/s architecture",
    )
    data: ReaderConfig = Field(default_factory=ReaderConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        default="auto",
        description="autocast: auto = bf16 on a GPU that has it (else fp16), fp32 on a CPU",
    )
    activation_checkpointing: bool = Field(
        default=False, description="recompute activations in the backward pass to save memory"
    )
    losses: LossConfig = Field(default_factory=LossConfig)
    codebook: CodebookConfig = Field(default_factory=CodebookConfig)
    encoder_init: EncoderInitConfig = Field(default_factory=EncoderInitConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    seed: int = Field(default=0, description="seeds weights, condition rows, dropout, k-means")
    device: str = Field(
        default="auto", description="auto (the local GPU under torchrun, else cpu), cpu, cuda:N"
    )

    @classmethod
    def expand_presets(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Replace a model preset name by the preset's settings (before overrides apply).

        Raises:
            ConfigError: no preset of that name.
        """
        model = data.get("model")
        if not isinstance(model, str):
            return data
        return {**data, "model": _read_model_preset(model)}

    @field_validator("model", mode="before")
    @classmethod
    def _resolve_model_preset(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return _read_model_preset(value)
        except ConfigError as error:
            raise ValueError(str(error)) from None

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit()):
            return value
        raise ValueError(f"auto, cpu, cuda or cuda:N, got {value!r}")

    @model_validator(mode="after")
    def _crop_fits_the_model(self) -> "TrainConfig":
        # The crop must be a whole number of hops (the reference crashes otherwise); checked
        # at the model's rate here, and again against the shards' rate when they are opened.
        try:
            self.data.crop_length(self.model.sample_rate, self.model.hop_length)
        except ConfigError as error:
            raise ValueError(f"data: {error}") from None
        if self.data.sample_rate not in (None, self.model.sample_rate):
            raise ValueError(
                f"data.sample_rate ({self.data.sample_rate}) equal to model.sample_rate "
                f"({self.model.sample_rate})"
            )
        return self


def _read_model_preset(name: str) -> dict[str, Any]:
    return read_yaml(resolve_preset("model", name))
