"""Figures for the report: matplotlib without pyplot, images of known size, a colour per sonotype.

Figures are made with `matplotlib.figure.Figure` on an explicit Agg canvas: no pyplot,
no global backend switch, no figure registry to leak memory across many plots, and
nothing happens at import time. Every figure uses the constrained layout engine and is
saved without `bbox_inches="tight"`, so its pixel size is known before it is written
and the page can reserve the space.
"""

import io

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.image import imsave
from scipy.signal import spectrogram

from analysis.report.assets import Assets, Image

DPI = 96
"""Screen resolution: one figure inch is 96 CSS pixels, so images show at their own size."""
_QUALITATIVE = "tab20"
THUMBNAIL_WIDTH = 240
"""Spectrogram thumbnail width in pixels: about a gallery card's width."""
_N_FFT = 190
THUMBNAIL_HEIGHT = _N_FFT // 2
_JPEG_QUALITY = 80
_THUMBNAIL_RANGE_DB = 70.0
"""Dynamic range shown in thumbnails: quieter bins than the peak minus this are black."""


def new_figure(width_in: float, height_in: float) -> Figure:
    """An empty figure with an Agg canvas and the constrained layout engine."""
    figure = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(assets: Assets, name: str, figure: Figure) -> Image:
    """Write a figure as `img/NAME.png` and return its reference.

    Args:
        assets: where report files go.
        name: file name without extension.
        figure: a figure from `new_figure`.
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    width, height = figure.get_size_inches() * DPI
    return assets.image(f"{name}.png", buffer.getvalue(), round(width), round(height))


def sonotype_colours(k: int) -> list[str]:
    """One colour per sonotype, the same on every plot and card.

    Up to 20 sonotypes get the 20 colours of `tab20` (pairs interleaved so neighbours
    differ); more get evenly spaced hues of a cyclic map, shuffled with a fixed
    permutation so that sonotypes j and j+1 do not look alike.
    """
    if k <= 20:
        order = [*range(0, 20, 2), *range(1, 20, 2)]
        palette = colormaps[_QUALITATIVE]
        return [to_hex(palette(order[j] / 20 + 1 / 40)) for j in range(k)]
    palette = colormaps["hsv"]
    permutation = np.random.default_rng(0).permutation(k)
    return [to_hex(palette(permutation[j] / k)) for j in range(k)]


def spectrogram_image(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """A dB spectrogram `[frequency, time]` of a mono clip, low frequencies first.

    A 190-point STFT with 50% overlap gives 95 frequency rows above 0 Hz (the Nyquist
    bin is dropped); time columns are then averaged (in power) or repeated to exactly
    the thumbnail's width, so every thumbnail has the same shape whatever the clip length.

    Args:
        samples: float32 `[T]`.
        sample_rate: Hz.

    Returns:
        float64 `[THUMBNAIL_HEIGHT, THUMBNAIL_WIDTH]`, dB (arbitrary reference).
    """
    samples = np.asarray(samples, np.float64)
    if len(samples) < _N_FFT:
        samples = np.pad(samples, (0, _N_FFT - len(samples)))
    _, _, power = spectrogram(
        samples, fs=sample_rate, nperseg=_N_FFT, noverlap=_N_FFT // 2, mode="psd"
    )
    power = power[:-1]
    n_columns = power.shape[1]
    edges = np.floor(np.arange(THUMBNAIL_WIDTH + 1) * n_columns / THUMBNAIL_WIDTH).astype(int)
    if n_columns >= THUMBNAIL_WIDTH:
        power = np.add.reduceat(power, edges[:-1], axis=1) / np.diff(edges)
    else:
        power = power[:, edges[:-1]]
    return 10 * np.log10(power + 1e-20)


def spectrogram_jpeg(samples: np.ndarray, sample_rate: int) -> tuple[bytes, int, int]:
    """A spectrogram thumbnail as JPEG bytes, with its width and height in pixels.

    One pixel per STFT bin (no axes), drawn by `imsave` without a figure. JPEG: a noisy
    spectrogram is about 60 kB as PNG and 8 kB as JPEG at quality 80, with no visible
    difference at thumbnail size. The colour range is the clip's peak minus
    `_THUMBNAIL_RANGE_DB`, so each thumbnail shows its own structure whatever the level.
    """
    decibels = spectrogram_image(samples, sample_rate)
    peak = float(np.max(decibels))
    buffer = io.BytesIO()
    imsave(
        buffer,
        decibels,
        cmap="magma",
        vmin=peak - _THUMBNAIL_RANGE_DB,
        vmax=peak,
        origin="lower",
        format="jpeg",
        pil_kwargs={"quality": _JPEG_QUALITY},
    )
    height, width = decibels.shape
    return buffer.getvalue(), width, height
