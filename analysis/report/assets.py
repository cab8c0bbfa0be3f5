"""The files beside `index.html`: plot images under `img/`, audio examples under `audio/`.

Each build writes its files into a folder of its own, `OUT/report/assets-<build>/`
(a path or fsspec URL), and the page refers to them by relative URLs, so the report
folder can be moved or zipped whole. The previous report's files stay until the new
`index.html` has replaced the old one (one atomic rename): a build killed half-way
leaves the old page whole, with every file it refers to. Only then are the other
builds' folders removed, so a smaller k does not leave last run's examples behind
and a killed build's half-written folder goes too.
"""

import logging
import posixpath
import re
import time
import uuid
from dataclasses import dataclass, field

from sonotype.fsio import join, url_to_fs, write_bytes_atomic

logger = logging.getLogger(__name__)

IMG_DIR = "img"
AUDIO_DIR = "audio"
BUILD_PREFIX = "assets-"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Image:
    """A written image.

    Attributes:
        src: its URL relative to the page (`assets-<build>/img/NAME.png` or `.jpg`).
        width: pixels.
        height: pixels.
    """

    src: str
    width: int
    height: int


def safe_name(name: str) -> str:
    """A file name made of letters, digits, `_`, `.` and `-` only."""
    return _UNSAFE.sub("-", name).strip("-.") or "file"


def new_build_name() -> str:
    """A folder name for one build's files, unique and sorting by time."""
    return f"{BUILD_PREFIX}{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"


@dataclass
class Assets:
    """Writes the report's images and audio files and counts their bytes.

    Args:
        report_dir: `OUT/report/`.
        build: this build's folder name under it (`assets-<time>-<random>`).
    """

    report_dir: str
    build: str = field(default_factory=new_build_name)
    n_bytes: dict[str, int] = field(default_factory=lambda: {IMG_DIR: 0, AUDIO_DIR: 0})
    n_files: dict[str, int] = field(default_factory=lambda: {IMG_DIR: 0, AUDIO_DIR: 0})

    def remove_other_builds(self) -> None:
        """Remove the files of every other build (call once this build's page is in place),
        and the `img/` and `audio/` folders of reports written before builds had folders."""
        fs, path = url_to_fs(self.report_dir)
        if not fs.exists(path):
            return
        for entry in fs.ls(path, detail=False):
            name = posixpath.basename(entry.rstrip("/"))
            stale = name.startswith(BUILD_PREFIX) and name != self.build
            if stale or name in (IMG_DIR, AUDIO_DIR):
                fs.rm(entry, recursive=True)
                logger.debug("removed an earlier report's %s", name)

    def _write(self, folder: str, name: str, data: bytes) -> str:
        relative = f"{self.build}/{folder}/{safe_name(name)}"
        write_bytes_atomic(join(self.report_dir, self.build, folder, safe_name(name)), data)
        self.n_bytes[folder] += len(data)
        self.n_files[folder] += 1
        return relative

    def image(self, name: str, data: bytes, width: int, height: int) -> Image:
        """Write an image file (PNG or JPEG) under `img/`; returns how the page refers to it."""
        return Image(self._write(IMG_DIR, name, data), width, height)

    def audio(self, name: str, data: bytes) -> str:
        """Write an audio file under `audio/`; returns its URL relative to the page."""
        return self._write(AUDIO_DIR, name, data)
