"""Named errors for problems a user can fix: bad config, bad input, mismatched outputs.

The CLI prints a `SonotypeError` as one line and exits with code 2; anything else is a
bug and keeps its traceback. Messages name the file or field, what was expected and
what was found.
"""


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


class OutputLockedError(SonotypeError):
    """Another run is writing the same output (see `sonotype.output_lock`)."""
