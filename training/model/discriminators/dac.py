"""The DAC discriminator: periods plus multi-band complex-STFT sub-discriminators.

Facts from `descriptinc/descript-audio-codec: dac/model/discriminator.py` as copied
into WavTokenizer (`decoder/discriminator_dac.py`, without the multi-scale part, whose
rates list is empty there): the waveform's DC offset is removed and its peak set to 0.8;
period sub-discriminators like HiFi-GAN's (but padding one whole period even when the
length is already a multiple); band sub-discriminators that take a complex STFT (real
and imaginary as 2 channels, rectangular window, hop = window / 4, centre padding),
split its bins into bands, run a stack of 2-D convs on each band, concatenate along
frequency and apply one output conv. Every conv is weight-normalised and followed by
LeakyReLU(0.1), except the output convs.

The reference trains with least squares: the last map is the score, the others are
feature-matched.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from training.model.discriminators.output import DiscriminatorOutput

_LEAKY_SLOPE = 0.1
"""LeakyReLU slope of the DAC discriminators."""

_PEAK = 0.8
"""Peak level the DAC discriminator normalises its input to (DAC `preprocess`)."""

_BAND_LAYERS = [
    # (kernel, stride, padding) over (frames, bins), as in DAC's MRD band stacks.
    ((3, 9), (1, 1), (1, 4)),
    ((3, 9), (1, 2), (1, 4)),
    ((3, 9), (1, 2), (1, 4)),
    ((3, 9), (1, 2), (1, 4)),
    ((3, 3), (1, 1), (1, 1)),
]


class DacPeriodDiscriminator(nn.Module):
    """DAC's MPD for one period: (5, 1) convs with stride (3, 1), the last one stride 1.

    Args:
        period: p.
        channels: output channels of the successive convs (published: 32, 128, 512, 1024, 1024).
    """

    def __init__(self, period: int, channels: list[int]) -> None:
        super().__init__()
        self.period = period
        convs = []
        in_channels = 1
        for index, out_channels in enumerate(channels):
            step = 1 if index == len(channels) - 1 else 3
            convs.append(
                weight_norm(nn.Conv2d(in_channels, out_channels, (5, 1), (step, 1), (2, 0)))
            )
            in_channels = out_channels
        self.convs = nn.ModuleList(convs)
        self.output_conv = weight_norm(nn.Conv2d(in_channels, 1, (3, 1), padding=(1, 0)))

    def forward(self, wav: torch.Tensor) -> DiscriminatorOutput:
        """Normalised `[B, 1, T]` → score map `[B, 1, frames, p]` and the conv maps."""
        # DAC pads period − (T mod period), a whole extra period when T is a multiple.
        x = F.pad(wav, (0, self.period - wav.shape[-1] % self.period), mode="reflect")
        x = x.view(x.shape[0], 1, -1, self.period)  # [B, 1, T / p, p]
        feature_maps = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), _LEAKY_SLOPE)
            feature_maps.append(x)
        return DiscriminatorOutput(self.output_conv(x), feature_maps)


class DacBandDiscriminator(nn.Module):
    """DAC's multi-band complex-spectrogram discriminator for one window length.

    Args:
        window_length: STFT size and window (rectangular), hop = window_length // 4.
        bands: (low, high) fractions of the window_length // 2 + 1 bins.
        channels: width of the convs (published: 32).
    """

    def __init__(
        self, window_length: int, bands: list[tuple[float, float]], channels: int = 32
    ) -> None:
        super().__init__()
        self.window_length = window_length
        n_bins = window_length // 2 + 1
        self.bands = [(int(low * n_bins), int(high * n_bins)) for low, high in bands]
        self.band_convs = nn.ModuleList([self._stack(channels) for _ in self.bands])
        self.output_conv = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))

    @staticmethod
    def _stack(channels: int) -> nn.ModuleList:
        in_channels = [2] + [channels] * (len(_BAND_LAYERS) - 1)
        return nn.ModuleList(
            [
                weight_norm(nn.Conv2d(c_in, channels, kernel, stride, padding))
                for c_in, (kernel, stride, padding) in zip(in_channels, _BAND_LAYERS, strict=True)
            ]
        )

    def forward(self, wav: torch.Tensor) -> DiscriminatorOutput:
        """Normalised `[B, 1, T]` → score map `[B, 1, frames, bins']` and the band conv maps."""
        spec = self.spectrogram(wav)  # [B, 2, frames, bins]
        feature_maps = []
        band_outputs = []
        for (low, high), stack in zip(self.bands, self.band_convs, strict=True):
            x = spec[..., low:high]
            for conv in stack:
                x = F.leaky_relu(conv(x), _LEAKY_SLOPE)
                feature_maps.append(x)
            band_outputs.append(x)
        out = self.output_conv(torch.cat(band_outputs, dim=-1))
        return DiscriminatorOutput(out, feature_maps)

    def spectrogram(self, wav: torch.Tensor) -> torch.Tensor:
        """`[B, 1, T]` → real and imaginary parts `[B, 2, frames, window_length // 2 + 1]`."""
        n_fft = self.window_length
        # DAC calls Tensor.stft without a window: rectangular, spelled out here.
        window = torch.ones(n_fft, device=wav.device, dtype=wav.dtype)
        spec = torch.stft(
            wav[:, 0], n_fft, n_fft // 4, n_fft, window=window, center=True, return_complex=True
        )  # [B, bins, frames]
        return torch.view_as_real(spec).permute(0, 3, 2, 1)  # [B, 2, frames, bins]


class DacDiscriminator(nn.Module):
    """Period sub-discriminators followed by band sub-discriminators, in one list.

    Args:
        periods: periods of the period sub-discriminators (published: 2, 3, 5, 7, 11).
        period_channels: their conv channels.
        fft_sizes: window lengths of the band sub-discriminators (published: 2048, 1024, 512).
        bands: frequency bands as fractions of the bins.
        band_channels: width of the band convs.
    """

    def __init__(
        self,
        periods: list[int],
        period_channels: list[int],
        fft_sizes: list[int],
        bands: list[tuple[float, float]],
        band_channels: int = 32,
    ) -> None:
        super().__init__()
        subs: list[nn.Module] = [DacPeriodDiscriminator(p, period_channels) for p in periods]
        subs += [DacBandDiscriminator(size, bands, band_channels) for size in fft_sizes]
        self.discriminators = nn.ModuleList(subs)

    def forward(
        self, wav: torch.Tensor, condition: torch.Tensor | None = None
    ) -> list[DiscriminatorOutput]:
        """Score a batch.

        Args:
            wav: `[B, T]`.
            condition: ignored (the DAC discriminator is not conditional); accepted so all
                discriminators share one call signature.

        Returns:
            One output per sub-discriminator, periods first.
        """
        x = wav.unsqueeze(1)  # [B, 1, T]
        x = x - x.mean(dim=-1, keepdim=True)
        # 1e-9 keeps silence finite, as in DAC.
        x = _PEAK * x / (x.abs().max(dim=-1, keepdim=True).values + 1e-9)
        return [discriminator(x) for discriminator in self.discriminators]
