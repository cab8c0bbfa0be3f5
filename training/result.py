"""What `training.train` returns."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TrainResult:
    """What a `train` call did.

    Attributes:
        run_dir: the run directory.
        step: optimizer steps done (over this and earlier runs).
        max_steps: the run's planned steps.
        interrupted: stopped by SIGTERM/SIGINT (a checkpoint was written; `--resume` goes on).
        checkpoint: the last checkpoint written by this call, if any.
        export: the inference export (`RunLayout.export`), if written.
        metrics: the last logged values (training and validation).
        elapsed_s: training seconds over this and earlier runs.
        weights_digest: SHA-256 of every weight and buffer of the models, the same on
            every rank of a DDP run.
    """

    run_dir: str
    step: int
    max_steps: int
    interrupted: bool
    checkpoint: str | None
    export: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    elapsed_s: float = 0.0
    weights_digest: str = ""

    def describe(self) -> str:
        """One line for the log."""
        state = "interrupted at" if self.interrupted else "trained to"
        shown = ", ".join(
            f"{key}={self.metrics[key]:.4g}"
            for key in ("loss/mel", "val/mel_distance", "val/si_sdr", "codebook/usage")
            if key in self.metrics
        )
        text = f"{state} step {self.step}/{self.max_steps} in {self.elapsed_s:.0f} s"
        text += f" ({shown})" if shown else ""
        text += f"; export {self.export}" if self.export else ""
        if self.interrupted:
            text += f"; continue with --resume --run {self.run_dir}"
        return text
