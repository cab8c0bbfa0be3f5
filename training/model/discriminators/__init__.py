"""Discriminators for adversarial training: MPD and MRD (Vocos) and the DAC discriminator.

Every discriminator takes a waveform `[B, T]` and returns one `DiscriminatorOutput`
per sub-discriminator. `Discriminators` holds the configured ones by name (`mpd`,
`mrd`, `dac`); `training.model.build.build_discriminators` makes it from a config.
"""

import torch
from torch import nn

from training.model.discriminators.output import DiscriminatorOutput

__all__ = ["DiscriminatorOutput", "Discriminators"]


class Discriminators(nn.ModuleDict):
    """The discriminators of a model, by name (a subset of `mpd`, `mrd`, `dac`)."""

    def forward(
        self, wav: torch.Tensor, condition: torch.Tensor | None = None
    ) -> dict[str, list[DiscriminatorOutput]]:
        """Run every discriminator on one batch of waveforms (real or generated).

        Args:
            wav: `[B, T]`.
            condition: int64 `[1]` row of the conditional embeddings of MPD/MRD when they
                have them (the published ones do not); ignored by the DAC discriminator.

        Returns:
            Name → outputs of its sub-discriminators.
        """
        return {name: discriminator(wav, condition) for name, discriminator in self.items()}
