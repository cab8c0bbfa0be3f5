"""Shards: the WebDataset shard writer, catalogs, the streaming reader, verify and stats."""
