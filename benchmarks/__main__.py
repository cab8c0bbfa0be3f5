"""`python -m benchmarks [NAME...]`: run the named benchmarks (default: all of them)."""

import importlib
import sys

BENCHMARKS = ("ingest", "shards_reader", "cluster", "train_memory", "encode", "quality")


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    for name in names:
        if name not in BENCHMARKS:
            print(f"unknown benchmark {name!r}; expected one of {', '.join(BENCHMARKS)}")
            return 2
        importlib.import_module(f"benchmarks.{name}").main([])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
