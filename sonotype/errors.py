"""Named errors for problems a user can fix: bad config, bad input, mismatched outputs.

The CLI prints a `SonotypeError` as one line and exits with code 2; anything else is a
bug and keeps its traceback. Messages name the file or field, what was expected and
what was found.
"""

import errno


class SonotypeError(Exception):
    """Base class for errors caused by input, configuration or existing outputs."""


class ConfigError(SonotypeError):
    """A configuration file or override is invalid."""


class AudioDecodeError(SonotypeError):
    """An audio file or byte string cannot be decoded."""


class ShardFormatError(SonotypeError):
    """A shard or one of its samples does not follow the shard contract."""


class CheckpointMismatchError(SonotypeError):
    """A checkpoint does not fit the model, store or run it is used with."""


class OutputConflictError(SonotypeError):
    """An existing output was made with settings that differ from the current ones."""


class DamagedStoreError(SonotypeError):
    """A feature store misses or has altered committed data (see `analysis.store_integrity`)."""


class OutputLockedError(SonotypeError):
    """Another run is writing the same output (see `sonotype.output_lock`)."""


class OutputEnvironmentError(SonotypeError):
    """The output cannot be written (full disk, quota, read-only, no permission): a fault
    of the environment, not of any input, so the run stops instead of failing inputs."""


# Errors that writing an output can meet and no input causes.
_ALWAYS_OUTPUT = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}
# Errors an unreadable input can cause too: the output's only when they name it.
_OUTPUT_WHEN_NAMED = {errno.EACCES, errno.EPERM}


def environment_message(error: OSError) -> str | None:
    """One line for an OS error no input causes alone (full disk, quota, read-only file
    system, no permission), or None for any other error.

    Used where such an error ends a command; ingest, which must tell a failed input from
    a failed output, decides with `output_environment_error` instead.
    """
    if error.errno not in _ALWAYS_OUTPUT | _OUTPUT_WHEN_NAMED:
        return None
    where = f"{error.filename}: " if error.filename else ""
    return (
        f"{where}{error.strerror or error}. The run stopped and kept what it had committed: "
        "free space or fix the permissions, then run the same command again"
    )


def output_environment_error(error: BaseException, out: str) -> OutputEnvironmentError | None:
    """The run-stopping error `error` amounts to, if it is the output's environment's fault.

    Args:
        error: what a task or a write raised.
        out: the output root (a path or URL) the run writes under.
    """
    if not isinstance(error, OSError):
        return None
    named = str(error.filename or "")
    ours = error.errno in _ALWAYS_OUTPUT or (
        error.errno in _OUTPUT_WHEN_NAMED and named.startswith(str(out).rstrip("/"))
    )
    if not ours:
        return None
    what = f" ({named})" if named else ""
    return OutputEnvironmentError(
        f"{out}: cannot write: {error.strerror or error}{what}. The run stopped; recordings "
        "not finished were not marked failed: free space or fix the output, then run the "
        "same command again"
    )
