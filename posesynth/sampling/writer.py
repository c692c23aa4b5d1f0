"""Writing in this process: shards generated on sampling threads, written on writer threads.

``write_local`` fills one whole shard at a time (``workers`` threads generate its blocks: torch
releases the GIL, each torch call runs on one thread) while a bounded pool of writer threads
compresses and writes the previous shards (Blosc and file I/O release the GIL too), with a fixed
number of reused shard buffers: memory does not grow with ``n``.  Each shard is one pass over
its rows (``posesynth.shard_file``), written atomically; rows that are not finite are refused.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch
import zarr

from posesynth.sampling.errors import SampleError
from posesynth.sampling.generate import BlockSampler
from posesynth.sampling.layout import Layout
from posesynth.shard_file import write_rows
from posesynth.stores.arrays import Shapes

WRITER_THREADS = 2


def generate_shard(sampler: BlockSampler, layout: Layout, shard: int, buffer: dict[str, np.ndarray],
                   pool: ThreadPoolExecutor | None = None, on_block: Callable[[int], None] = lambda rows: None) -> None:
    """Fill ``buffer`` (name -> (rows, ...)) with the rows of ``shard``, block by block, on the
    threads of ``pool`` when given (blocks fill disjoint rows, in any order)."""
    start, stop = layout.rows(shard)

    def fill(b: int) -> int:
        lo = b * layout.block
        rows = min(stop, lo + layout.block) - lo
        for name, values in sampler.block(b).items():
            buffer[name][lo - start:lo - start + rows] = values[:rows]
        return rows

    for rows in (pool.map(fill, layout.blocks(shard)) if pool else map(fill, layout.blocks(shard))):
        on_block(rows)


def write_shard(arrays: dict[str, zarr.Array], layout: Layout, shard: int, buffer: dict[str, np.ndarray]) -> None:
    """Write ``shard``'s rows of every array from ``buffer`` (name -> (rows, ...)): whole shards, one file each
    (``posesynth.shard_file``: one pass over the rows).  Rows that are not finite in the
    stored dtype are refused (SampleError) before anything of the shard is written."""
    start, stop = layout.rows(shard)
    rows = {name: buffer[name][:stop - start] for name in arrays}
    check_finite(rows, f"rows {start}..{stop - 1}")
    for name, arr in arrays.items():
        write_rows(arr, start, rows[name])


def check_finite(arrays: dict[str, np.ndarray], where: str) -> None:
    """SampleError naming the first float array of ``arrays`` (name -> (rows, ...)) that holds a NaN
    or an infinity."""
    for name, values in arrays.items():
        # A sum is one fast pass and is finite for finite rows (unless they overflow it: then look closer).
        with np.errstate(over="ignore", invalid="ignore"):
            suspect = values.dtype.kind == "f" and not np.isfinite(values.sum())
        if suspect and not np.isfinite(values).all():
            raise SampleError(f"{name}, {where}: NaN or infinite values in the stored {values.dtype}; the pose "
                              "source or the recipe gives impossible samples, so the store is left incomplete")


def new_buffer(shapes: Shapes, layout: Layout) -> dict[str, np.ndarray]:
    """Room for one shard of every array: name -> (rows, ...) of its dtype, rows = the shard size
    (or ``n``, when the store is smaller)."""
    rows = min(layout.shard, layout.n)
    return {name: np.empty((rows,) + tail, dtype=dtype) for name, (tail, dtype) in shapes.items()}


class ShardWriter:
    """Writes whole shards on ``threads`` background threads while the caller fills the next.

    At most ``threads`` shards are in flight and ``threads + 1`` buffers exist, reused, so
    memory is bounded whatever the number of shards.  ``on_written(shard)`` runs in the
    caller's thread once a shard is on disk.
    """

    def __init__(self, arrays: dict[str, zarr.Array], layout: Layout,
                 shapes: Shapes, on_written: Callable[[int], None],
                 threads: int = WRITER_THREADS) -> None:
        self.arrays, self.layout, self.shapes, self.on_written = arrays, layout, shapes, on_written
        self.threads = threads
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="posesynth-writer")
        self._in_flight: deque[tuple[int, Future, dict[str, np.ndarray]]] = deque()
        self._free: list[dict[str, np.ndarray]] = []
        self._allocated = 0

    def buffer(self) -> dict[str, np.ndarray]:
        """A shard buffer to fill, waiting for a write to finish when all are in use."""
        while not self._free and self._allocated > self.threads:
            self._finish_oldest()
        if self._free:
            return self._free.pop()
        self._allocated += 1
        return new_buffer(self.shapes, self.layout)

    def submit(self, shard: int, buffer: dict[str, np.ndarray]) -> None:
        future = self._pool.submit(write_shard, self.arrays, self.layout, shard, buffer)
        self._in_flight.append((shard, future, buffer))
        while self._in_flight and self._in_flight[0][1].done():
            self._finish_oldest()

    def close(self, raise_error: bool = True) -> None:
        """Wait for every write (recording each shard that made it to disk), then re-raise the
        first error; ``raise_error=False`` drops them (another error is already on its way)."""
        first: BaseException | None = None
        while self._in_flight:
            try:
                self._finish_oldest()
            except Exception as exc:
                first = first or exc
        self._pool.shutdown(wait=True)
        if first is not None and raise_error:
            raise first

    def _finish_oldest(self) -> None:
        shard, future, buffer = self._in_flight.popleft()
        future.result()
        self._free.append(buffer)
        self.on_written(shard)


def write_local(sampler: BlockSampler, arrays: dict[str, zarr.Array], layout: Layout,
                shapes: Shapes, shards: list[int], workers: int,
                on_written: Callable[[int], None], on_block: Callable[[int], None] = lambda rows: None) -> None:
    """Generate ``shards`` on ``workers`` threads and write them on the writer threads."""
    writer = ShardWriter(arrays, layout, shapes, on_written)
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="posesynth-sample") as pool, single_torch_thread():
            for shard in shards:
                buffer = writer.buffer()
                generate_shard(sampler, layout, shard, buffer, pool, on_block)
                writer.submit(shard, buffer)
    except BaseException:
        writer.close(raise_error=False)  # the first error is the one raised
        raise
    writer.close()


@contextlib.contextmanager
def single_torch_thread() -> Iterator[None]:
    """One intra-op thread per torch call for the duration: the parallelism is across blocks
    (OpenMP teams fighting the writer and sampling threads for cores are much slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def default_workers(device: torch.device) -> int:
    """Sampling threads: one per core on the CPU, one on a GPU."""
    return 1 if device.type == "cuda" else max(1, os.cpu_count() or 1)
