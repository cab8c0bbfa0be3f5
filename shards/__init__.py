"""Shards: the WebDataset shard writer, catalogs, the streaming reader, verify and stats.

Public API (imported on first use, so that `import shards.writer` in torch-free ingest
workers does not load torch; only the reader needs it):

- `ShardLoader`, `Batch`, `ReadMode` (`shards.reader`): batches of crops for training,
  validation and encoding, with `state_dict()` / `load_state_dict()` for exact resume.
- `ShardIndex` (`shards.index`): shards and their selected-sample counts.
- `verify_shards` (`shards.verify`) and `shard_stats` (`shards.stats`): torch-free.
"""

from sonotype.lazy import lazy_attributes

__all__ = ["Batch", "ReadMode", "ShardIndex", "ShardLoader", "shard_stats", "verify_shards"]

_HOMES = {
    "Batch": "shards.batch",
    "ReadMode": "shards.reader",
    "ShardLoader": "shards.reader",
    "ShardIndex": "shards.index",
    "shard_stats": "shards.stats",
    "verify_shards": "shards.verify",
}


__getattr__, __dir__ = lazy_attributes(__name__, _HOMES)
