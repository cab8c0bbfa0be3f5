"""Training: the WavTokenizer model, its trainer, checkpoints and encoding to Zarr."""
