"""Logging set-up, done once by the CLI: `-v` for detail, `-q` for warnings only."""

import logging
import sys

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_DATE_FORMAT = "%H:%M:%S"


def verbosity_to_level(verbose: int, quiet: bool) -> int:
    """Map `-v` counts and `-q` to a logging level.

    Args:
        verbose: how many times `-v` was given (0: INFO, 1 or more: DEBUG).
        quiet: `-q` was given (WARNING); wins over `verbose`.

    Returns:
        A `logging` level.
    """
    if quiet:
        return logging.WARNING
    return logging.DEBUG if verbose > 0 else logging.INFO


def configure_logging(level: int) -> None:
    """Send sonotype's log records to stderr at `level`.

    Third-party libraries stay at WARNING unless `level` is DEBUG, so `-v` shows what
    Dask or webdataset are doing without flooding a normal run.

    Args:
        level: a `logging` level for the sonotype packages.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT, _DATE_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level if level <= logging.DEBUG else logging.WARNING)
    for package in ("sonotype", "ingest", "shards", "training", "analysis"):
        logging.getLogger(package).setLevel(level)
