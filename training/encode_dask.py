"""The Dask side of encode: workers encode whole shards, the client gets them back in order.

Each worker process holds one tokenizer, loaded once on its first task by a
`WorkerPlugin` (named after the checkpoint digest, so a different model never reuses
it) and run with one torch thread: the cluster has one single-threaded process per
core. A task encodes one shard (`encode_shard`) and keeps its features on the worker
until the client asks for them.

The client (`sonotype.dask_cluster.dask_client`: a local cluster of single-threaded
worker processes, or an existing scheduler) appends shard after shard in the order of
the shard list, whatever order the tasks finish in, so the store is the same for any
number of workers. At most `window` shards are submitted and not yet appended: finished
shards that wait for an earlier, slower one are what the workers hold beyond the shard
at hand, so memory is bounded by the window, not by the number of shards.
"""

import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from dask.distributed import Client, Future, WorkerPlugin, as_completed, get_worker

from sonotype.config.model import ModelConfig
from training.encode_shard import ShardFeatures, ShardSettings, encode_shard
from training.tokenizer import Tokenizer, load_tokenizer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShardJob:
    """One shard to encode: where it is, its name in the store, its selected segments."""

    url: str
    shard: str
    n_segments: int


class TokenizerPlugin(WorkerPlugin):
    """Gives every worker process one tokenizer, loaded on first use, one torch thread.

    Loading happens in the first task's thread rather than in `setup`, which runs on the
    worker's event loop: a large checkpoint would stall its heartbeats.

    Args:
        checkpoint: path or URL of the checkpoint (workers read it themselves).
        model_config: the config of a published `.ckpt` (None for sonotype checkpoints).
        digest: the checkpoint digest; names the plugin.
        chunk_frames: see `Tokenizer`.
    """

    idempotent = True

    def __init__(
        self, checkpoint: str, model_config: ModelConfig | None, digest: str, chunk_frames: int
    ) -> None:
        self.checkpoint, self.model_config = checkpoint, model_config
        self.chunk_frames = chunk_frames
        self.name = f"sonotype-tokenizer-{digest[:16]}-{chunk_frames}"
        self._tokenizer: Tokenizer | None = None
        self._lock: threading.Lock | None = None

    def setup(self, worker: object) -> None:
        self._lock = threading.Lock()

    def tokenizer(self) -> Tokenizer:
        """The worker's tokenizer (loaded by the first caller)."""
        if self._lock is None:
            raise RuntimeError("TokenizerPlugin used before its setup on a worker")
        with self._lock:
            if self._tokenizer is None:
                # One intra-op thread per single-threaded worker: more would fight the
                # other workers for the same cores.
                torch.set_num_threads(1)
                self._tokenizer = load_tokenizer(
                    self.checkpoint, self.model_config, chunk_frames=self.chunk_frames
                )
            return self._tokenizer

    def __getstate__(self) -> dict:
        # Sent to workers before anything is loaded; never ship a model or a lock.
        state = dict(self.__dict__)
        state["_tokenizer"], state["_lock"] = None, None
        return state


def _encode_task(plugin_name: str, job: ShardJob, settings: ShardSettings) -> ShardFeatures:
    """What a worker runs: one shard with the worker's tokenizer."""
    plugin = get_worker().plugins[plugin_name]
    return encode_shard(plugin.tokenizer(), job.url, job.shard, settings)


def encode_on_dask(
    client: Client,
    jobs: Sequence[ShardJob],
    settings: ShardSettings,
    plugin: TokenizerPlugin,
    window: int,
    on_done: Callable[[ShardJob], None],
) -> Iterator[ShardFeatures]:
    """Encode shards on the cluster; yield their features in the order of `jobs`.

    Args:
        client: the Dask client.
        jobs: shards in the order they must be appended.
        settings: the per-shard settings.
        plugin: the tokenizer plugin (registered here).
        window: most shards submitted and not yet yielded.
        on_done: called with each job as its task finishes (progress), in finishing order.

    Yields:
        One `ShardFeatures` per job, in order. A task that raised re-raises here.
    """
    client.register_plugin(plugin)
    run = uuid.uuid4().hex[:8]
    futures: dict[int, Future] = {}
    position_of: dict[str, int] = {}
    finished: set[int] = set()
    pending = as_completed()
    submitted = 0

    def submit() -> None:
        nonlocal submitted
        job = jobs[submitted]
        future = client.submit(
            _encode_task, plugin.name, job, settings, key=f"encode-{run}-{submitted}", pure=False
        )
        futures[submitted], position_of[future.key] = future, submitted
        pending.add(future)
        submitted += 1

    while submitted < min(window, len(jobs)):
        submit()
    yielded = 0
    for future in pending:
        position = position_of.pop(future.key)
        finished.add(position)
        on_done(jobs[position])
        while yielded in finished:
            ready = futures.pop(yielded)
            result = ready.result()  # re-raises the task's exception
            ready.release()  # the worker can drop the features now
            yield result
            yielded += 1
            if submitted < len(jobs):
                submit()
