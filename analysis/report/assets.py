"""The files beside `index.html`: plot images under `img/`, audio examples under `audio/`.

Files are written atomically under `OUT/report/` (a path or fsspec URL) and referenced
from the page by relative URLs, so the report folder can be moved or zipped whole.
A new report first removes the `img/` and `audio/` folders of the previous one: a
smaller k must not leave last run's examples behind.
"""

import logging
import re
from dataclasses import dataclass, field

from sonotype.fsio import exists, join, url_to_fs, write_bytes_atomic

logger = logging.getLogger(__name__)

IMG_DIR = "img"
AUDIO_DIR = "audio"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Image:
    """A written image.

    Attributes:
        src: its URL relative to the page (`img/NAME.png` or `.jpg`).
        width: pixels.
        height: pixels.
    """

    src: str
    width: int
    height: int


def safe_name(name: str) -> str:
    """A file name made of letters, digits, `_`, `.` and `-` only."""
    return _UNSAFE.sub("-", name).strip("-.") or "file"


@dataclass
class Assets:
    """Writes the report's images and audio files and counts their bytes.

    Args:
        report_dir: `OUT/report/`.
    """

    report_dir: str
    n_bytes: dict[str, int] = field(default_factory=lambda: {IMG_DIR: 0, AUDIO_DIR: 0})
    n_files: dict[str, int] = field(default_factory=lambda: {IMG_DIR: 0, AUDIO_DIR: 0})

    def clear(self) -> None:
        """Remove the image and audio folders of a previous report."""
        for folder in (IMG_DIR, AUDIO_DIR):
            target = join(self.report_dir, folder)
            if exists(target):
                fs, path = url_to_fs(target)
                fs.rm(path, recursive=True)
                logger.debug("removed the previous report's %s", target)

    def _write(self, folder: str, name: str, data: bytes) -> str:
        relative = f"{folder}/{safe_name(name)}"
        write_bytes_atomic(join(self.report_dir, folder, safe_name(name)), data)
        self.n_bytes[folder] += len(data)
        self.n_files[folder] += 1
        return relative

    def image(self, name: str, data: bytes, width: int, height: int) -> Image:
        """Write an image file (PNG or JPEG) under `img/`; returns how the page refers to it."""
        return Image(self._write(IMG_DIR, name, data), width, height)

    def audio(self, name: str, data: bytes) -> str:
        """Write an audio file under `audio/`; returns its URL relative to the page."""
        return self._write(AUDIO_DIR, name, data)
