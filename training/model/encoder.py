"""EnCodec's SEANet encoder: a waveform → one D-dimensional latent per hop of samples.

Structure (facts from `facebookresearch/encodec: encodec/modules/seanet.py`, as
configured by WavTokenizer's `EncodecFeatures`): a k=7 conv to `n_filters` channels;
per stride one residual unit, ELU and a strided conv (kernel 2×stride) that doubles
the channels; a unidirectional LSTM with a skip connection; ELU; a k=7 conv to D.
Every conv is weight-normalised and pads its input with reflection, more on the left
than on the right for odd padding, plus what the last window needs to be full, so that
a layer with stride s turns L samples into ceil(L / s) and the whole encoder turns T
samples into ceil(T / hop) frames.

The forward pass is split into `convolve` (everything before the LSTM, a finite
receptive field), `recur` (the LSTM, which can carry its state) and `project`, so that
`training.chunked` can encode long audio chunk by chunk with the same result.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


def reflect_pad(x: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """Reflection padding of the last axis that also works on inputs shorter than the padding.

    `F.pad(mode="reflect")` needs more samples than it pads; like EnCodec's `pad1d`, a
    short input is first extended with zeros on the right, reflected, and the zeros'
    share cut off again, so short inputs give the same result as in the reference.

    Args:
        x: `[..., L]`.
        left: samples to add on the left.
        right: samples to add on the right.

    Returns:
        `[..., L + left + right]`.
    """
    length = x.shape[-1]
    widest = max(left, right)
    extra = widest - length + 1 if length <= widest else 0
    if extra:
        x = F.pad(x, (0, extra))
    padded = F.pad(x, (left, right), mode="reflect")
    return padded[..., : padded.shape[-1] - extra]


class PaddedConv1d(nn.Module):
    """A weight-normalised Conv1d with EnCodec's non-causal "same" padding (SConv1d).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: kernel width.
        stride: stride; L input steps give ceil(L / stride) output steps.
        dilation: dilation of the kernel.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        self.conv = weight_norm(
            nn.Conv1d(in_channels, out_channels, kernel_size, stride, dilation=dilation)
        )
        self.stride = stride
        effective_kernel = (kernel_size - 1) * dilation + 1
        padding_total = effective_kernel - stride
        # Non-causal EnCodec: the odd sample of padding goes to the left.
        self.pad_right = padding_total // 2
        self.pad_left = padding_total - self.pad_right

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`[B, C_in, L]` → `[B, C_out, ceil(L / stride)]`."""
        # EnCodec's get_extra_padding_for_conv1d pads the right end until the last window
        # is full; with padding_total = kernel - stride that is exactly (-L) mod stride.
        extra = -x.shape[-1] % self.stride
        return self.conv(reflect_pad(x, self.pad_left, self.pad_right + extra))

    @property
    def reach(self) -> tuple[int, int]:
        """How many input steps left and right of its window an output step can depend on,
        counting the reflected padding at a chunk edge (left, right)."""
        return self.pad_left, self.pad_right + self.stride - 1


class ResidualUnit(nn.Module):
    """SEANet residual unit: ELU → conv k → ELU → conv 1, plus a 1×1 conv shortcut.

    Args:
        channels: input and output channels C.
        kernel_size: kernel of the first conv (3 in the published models).
        compress: the branch runs at C / compress channels (Demucs v3, as in EnCodec).
    """

    def __init__(self, channels: int, kernel_size: int, compress: int) -> None:
        super().__init__()
        hidden = channels // compress
        self.conv1 = PaddedConv1d(channels, hidden, kernel_size)
        self.conv2 = PaddedConv1d(hidden, channels, 1)
        # EnCodec's true_skip=False: the skip path is a 1×1 conv, not the identity.
        self.shortcut = PaddedConv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`[B, C, L]` → `[B, C, L]`."""
        branch = self.conv2(F.elu(self.conv1(F.elu(x))))
        return self.shortcut(x) + branch


class EncoderStage(nn.Module):
    """One residual unit, ELU, then a strided conv (kernel 2 × stride) doubling the channels."""

    def __init__(
        self, channels: int, stride: int, residual_kernel_size: int, compress: int
    ) -> None:
        super().__init__()
        self.residual = ResidualUnit(channels, residual_kernel_size, compress)
        self.downsample = PaddedConv1d(channels, 2 * channels, 2 * stride, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`[B, C, L]` → `[B, 2C, ceil(L / stride)]`."""
        return self.downsample(F.elu(self.residual(x)))


LstmState = tuple[torch.Tensor, torch.Tensor]
"""(h, c) of the encoder LSTM, each `[n_layers, B, C]`."""


class SEANetEncoder(nn.Module):
    """Waveform → latent frames.

    Args:
        n_filters: channels after the first conv; doubled by every stage.
        strides: downsampling strides, input side first; hop = their product.
        dimension: latent size D.
        kernel_size: kernel of the first conv.
        last_kernel_size: kernel of the last conv.
        residual_kernel_size: kernel of the residual units.
        compress: channel reduction inside residual units.
        n_lstm_layers: LSTM layers before the last conv (0: none).
    """

    def __init__(
        self,
        n_filters: int,
        strides: list[int],
        dimension: int,
        kernel_size: int = 7,
        last_kernel_size: int = 7,
        residual_kernel_size: int = 3,
        compress: int = 2,
        n_lstm_layers: int = 2,
    ) -> None:
        super().__init__()
        self.hop_length = math.prod(strides)
        self.dimension = dimension
        self.input_conv = PaddedConv1d(1, n_filters, kernel_size)
        channels = n_filters
        stages = []
        for stride in strides:
            stages.append(EncoderStage(channels, stride, residual_kernel_size, compress))
            channels *= 2
        self.stages = nn.ModuleList(stages)
        self.lstm = nn.LSTM(channels, channels, n_lstm_layers) if n_lstm_layers else None
        self.output_conv = PaddedConv1d(channels, dimension, last_kernel_size)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """Encode a batch of waveforms.

        Args:
            wav: `[B, T]`.

        Returns:
            Latents `[B, D, F]`, F = ceil(T / hop).
        """
        hidden, _ = self.recur(self.convolve(wav))
        return self.project(hidden)

    def convolve(self, wav: torch.Tensor) -> torch.Tensor:
        """The convolutions before the LSTM: `[B, T]` → `[B, C, F]` (C = n_filters · 2^stages)."""
        x = self.input_conv(wav.unsqueeze(1))  # [B, n_filters, T]
        for stage in self.stages:
            x = stage(x)
        return x

    def recur(
        self, x: torch.Tensor, state: LstmState | None = None
    ) -> tuple[torch.Tensor, LstmState | None]:
        """The LSTM with its skip connection (EnCodec's SLSTM), optionally from a carried state.

        Args:
            x: `[B, C, F]`.
            state: the state after the previous frames, or None to start from zeros.

        Returns:
            (`[B, C, F]`, the state after the last frame; None without an LSTM).
        """
        if self.lstm is None:
            return x, None
        y, new_state = self.lstm(x.permute(2, 0, 1), state)  # [F, B, C]: sequence first
        return y.permute(1, 2, 0) + x, new_state  # [B, C, F]

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """ELU and the last conv: `[B, C, F]` → `[B, D, F]`."""
        return self.output_conv(F.elu(x))

    def context_frames(self) -> int:
        """Frames of audio on each side of a chunk that make `convolve` exact inside it.

        The sum, over every conv before the LSTM, of how far an output can reach past its
        window (padding included), in samples, rounded up to whole frames, plus one.
        """
        layers: list[tuple[PaddedConv1d, int]] = [(self.input_conv, 1)]
        rate = 1
        for stage in self.stages:
            unit = stage.residual
            # The unit's branch (conv1 then conv2) and its shortcut run side by side.
            layers += [(unit.conv1, rate), (unit.conv2, rate), (stage.downsample, rate)]
            rate *= stage.downsample.stride
        reach = sum(max(conv.reach) * step for conv, step in layers)
        return math.ceil(reach / self.hop_length) + 1
