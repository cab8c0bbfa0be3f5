"""The shards package: a lazy public API that keeps verify, stats and the index torch-free."""

import subprocess
import sys

import shards


def test_public_names_resolve_to_their_modules():
    assert shards.ShardLoader.__module__ == "shards.reader"
    assert shards.Batch.__module__ == "shards.batch"
    assert shards.verify_shards.__module__ == "shards.verify"
    assert shards.shard_stats.__module__ == "shards.stats"
    assert set(shards.__all__) <= set(dir(shards))


def test_verify_stats_and_the_index_do_not_import_torch():
    code = (
        "import sys, shards, shards.verify, shards.stats, shards.index, shards.plan; "
        "print(sorted({'torch', 'webdataset'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
