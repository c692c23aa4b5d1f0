"""Writing on a dask.distributed cluster: each task generates and writes one whole shard."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from posesynth.body_model import load_body_model
from posesynth.errors import require_extra
from posesynth.pose_source import PoseSource, StorePoseSource
from posesynth.pose_sources import load_pose_source
from posesynth.sample_recipe import SampleRecipe
from posesynth.sampling.errors import SampleError
from posesynth.sampling.generate import BlockSampler
from posesynth.sampling.layout import Layout, array_shapes
from posesynth.sampling.resume import canonical
from posesynth.sampling.writer import generate_shard, new_buffer, single_torch_thread, write_shard


@dataclass(frozen=True)
class SourceRef:
    """What a worker process needs to rebuild a pose source: its path and options."""

    path: str
    options: dict[str, Any] = field(default_factory=dict)

    def load(self) -> PoseSource:
        return load_pose_source(self.path, **self.options)


def source_ref(source: PoseSource | str | Path) -> SourceRef | None:
    """A ``SourceRef`` for a path or a source loaded from one; None for other sources."""
    if isinstance(source, (str, Path)):
        return SourceRef(str(source))
    if isinstance(source, StorePoseSource):
        return SourceRef(str(source.path), dict(source.options))
    path = getattr(source, "path", None)
    if path is not None and Path(path).suffix == ".pt":
        return SourceRef(str(path))
    return None


@dataclass(frozen=True)
class ShardJob:
    """Everything a worker needs to generate and write shards of one run (picklable)."""

    source: SourceRef
    out: str
    recipe: SampleRecipe
    seed: int
    n: int
    device: str
    body_model: str | None


_WORKER_CACHE: dict[str, tuple[BlockSampler, dict[str, zarr.Array], dict[str, np.ndarray]]] = {}


def _worker_state(job: ShardJob) -> tuple[BlockSampler, dict[str, zarr.Array], dict[str, np.ndarray]]:
    """This process's sampler, open arrays and shard buffer for ``job`` (built once per process)."""
    key = canonical([job.source.path, job.source.options, job.out, job.recipe.to_dict(), job.seed, job.n])
    if key not in _WORKER_CACHE:
        _WORKER_CACHE.clear()
        body = load_body_model(job.body_model)
        sampler = BlockSampler(job.source.load(), job.recipe, job.seed, body, job.device)
        group = zarr.open_group(job.out, mode="r+")
        shapes = array_shapes(job.recipe, body.num_betas)
        arrays = {name: group[name] for name in shapes}
        _WORKER_CACHE[key] = (sampler, arrays, new_buffer(shapes, Layout.of(job.recipe, job.n)))
    return _WORKER_CACHE[key]


def run_shard(job: ShardJob, shard: int) -> int:
    """Generate and write one shard of ``job`` (a dask task); returns ``shard``."""
    sampler, arrays, buffer = _worker_state(job)
    layout = Layout.of(job.recipe, job.n)
    with single_torch_thread():
        generate_shard(sampler, layout, shard, buffer)
    write_shard(arrays, layout, shard, buffer)
    return shard


DASK_CONNECT_TIMEOUT = 10  # seconds to reach a scheduler before giving up


@contextlib.contextmanager
def dask_client(address: str) -> Iterator[Any]:
    """A dask.distributed client of the scheduler at ``address`` (``local:K``: a cluster of K
    local processes for the duration), connected, so a wrong or unreachable address fails
    before anything is written."""
    require_extra("dask", "posesynth sample --dask", "distributed")
    from distributed import Client, LocalCluster

    with contextlib.ExitStack() as stack:
        scheduler: Any = address
        if address.startswith("local:"):
            scheduler = stack.enter_context(LocalCluster(n_workers=_local_workers(address), threads_per_worker=1,
                                                         processes=True, dashboard_address=None))
        try:
            client = stack.enter_context(Client(scheduler, timeout=DASK_CONNECT_TIMEOUT))
        except (OSError, ValueError, TypeError) as exc:
            raise SampleError(f"--dask {address}: cannot reach the scheduler ({exc})") from None
        yield client


def write_dask(client: Any, job: ShardJob, shards: list[int], on_written: Callable[[int], None],
               on_block: Callable[[int], None]) -> None:
    """Run one task per shard of ``job`` on the cluster of ``client`` (``dask_client``)."""
    from distributed import as_completed

    layout = Layout.of(job.recipe, job.n)
    for future in as_completed([client.submit(run_shard, job, s, pure=False) for s in shards]):
        shard = future.result()
        on_written(shard)
        first, stop = layout.rows(shard)
        on_block(stop - first)


def _local_workers(address: str) -> int:
    try:
        workers = int(address.split(":", 1)[1])
    except ValueError:
        workers = 0
    if workers < 1:
        raise SampleError(f"--dask {address}: expected local:K with K >= 1 worker processes")
    return workers
