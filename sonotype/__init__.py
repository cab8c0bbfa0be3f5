"""sonotype: learn the sound structure of long-term field recordings without labels.

The shared package holds what at least two stages use: the CLI, typed configs, data
contracts, audio I/O, filesystem helpers, logging and progress. Importing it does nothing
else (no torch, no Dask).
"""

__version__ = "0.1.0"
