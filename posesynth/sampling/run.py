"""The run: ``sample_to_store`` checks every argument first (``checked_run``), then writes.

Every argument is checked first (recipe, source, body model, label, memory; a dask scheduler is
connected), and only then is the store locked and created incomplete
(``posesynth.store.writing_store``: a replaced store is written beside the old one and swapped
in at the end), every array filled one whole shard at a time, here (``sampling.writer``) or on
a dask.distributed cluster (``sampling.cluster``), and the store marked complete at the very end.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr
from tqdm import tqdm

from posesynth.body_model import load_body_model
from posesynth.devices import resolve_device
from posesynth.gan.checkpoint import adapted_sampling
from posesynth.pose_source import PoseSource
from posesynth.sample_recipe import SampleRecipe, resolve_sample_recipe, validate_sample_recipe
from posesynth.sampling.cluster import ShardJob, SourceRef, dask_client, source_ref, write_dask
from posesynth.sampling.errors import SampleError
from posesynth.sampling.generate import BlockSampler, check_body_model
from posesynth.sampling.layout import Layout, array_shapes
from posesynth.sampling.resume import disk_error, open_for_writing, shard_recorder, store_attrs
from posesynth.sampling.writer import default_workers, write_local
from posesynth.store import StoreError, mark_complete, writing_store
from posesynth.stores.arrays import Shapes
from posesynth.stores.samples import camera_path


@dataclass
class SampleSummary:
    out: Path
    n: int
    shards_written: int
    seconds: float
    resumed: bool


def sample_to_store(
    source: PoseSource | str | Path,
    out: str | Path,
    n: int,
    seed: int = 0,
    recipe: SampleRecipe | dict[str, Any] | None = None,
    *,
    device: str | torch.device = "auto",
    workers: int | None = None,
    dask_address: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    zarr_format: int = 3,
    body_model: str | Path | None = None,
    progress: bool = False,
) -> SampleSummary:
    """Draw ``n`` samples from ``source`` and write them to a sample store at ``out``
    (docs/sample_store.md).  Raises SampleError or StoreError with a message that says why.

    Args:
        source: a ``PoseSource``, or the path of a GAN checkpoint (.pt) or training store.
        recipe: a resolved sampling recipe (``resolve_sample_recipe``, or a store's ``recipe``
            attribute); None: the default one (with an adapted checkpoint's own cameras).
        device: "auto" (CUDA when present), "cpu" or "cuda".
        workers: sampling threads in this process (None: one per core on the CPU, one on a GPU).
        dask_address: a dask.distributed scheduler, or ``local:K`` for K local processes; each
            task generates and writes one shard.  ``source`` must then be a path, or a source
            loaded from one, that the workers can load.
        resume: finish the interrupted store at ``out`` (same source, seed, recipe and ``n``).
        overwrite: replace an existing store at ``out``.
        zarr_format: 3 (sharded) or 2 (chunks only, for old readers).
        body_model: an SMPL-format body model file (None: posesynth's own).
        progress: show a progress bar with samples/s.

    The store is bitwise identical whatever ``workers``, the dask cluster and the layout sizes
    (``chunk_size``, ``shard_size``); the source, recipe (``block_size`` included) and seed make it.
    """
    start = time.perf_counter()
    run = checked_run(source, n, seed, recipe, device, workers, dask_address, zarr_format, body_model, Path(out))
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(dask_client(dask_address)) if dask_address else None
        target = stack.enter_context(writing_store(out, overwrite=overwrite, resume=resume))
        group, done = open_for_writing(target, run.attrs, run.shapes, run.layout, run.zarr_format)
        todo = [s for s in range(run.layout.num_shards) if s not in done]
        resumed = bool(done)
        try:
            _write_shards(run, target.path, group, todo, shard_recorder(group, done), client, progress)
        except OSError as exc:
            raise StoreError(disk_error(target, exc)) from exc
        mark_complete(group, num_samples=n)
    return SampleSummary(Path(out), n, len(todo), time.perf_counter() - start, resumed)


@dataclass(frozen=True)
class SampleRun:
    """Everything a run needs, checked before the store is touched (``checked_run``)."""

    ref: SourceRef | None
    recipe: SampleRecipe
    seed: int
    layout: Layout
    device: torch.device
    workers: int
    zarr_format: int
    body_model: str | None
    sampler: BlockSampler
    shapes: Shapes
    attrs: dict[str, Any]


def checked_run(source: PoseSource | str | Path, n: int, seed: int, recipe: SampleRecipe | dict[str, Any] | None,
                device: str | torch.device, workers: int | None, dask_address: str | None, zarr_format: int,
                body_model: str | Path | None, out: Path) -> SampleRun:
    """Check every argument of ``sample_to_store`` (recipe, layout, device, source, body model,
    label, memory) and load the source, the body and the sampler for the store at ``out``;
    nothing is written."""
    recipe = resolve_sample_recipe(adapted=adapted_sampling(source)) if recipe is None else validate_sample_recipe(recipe)
    layout = Layout.of(recipe, n)
    device = resolve_device(device)
    workers = default_workers(device) if workers is None else workers
    _check_args(layout, workers, zarr_format)
    ref = source_ref(source)
    if dask_address and ref is None:
        raise SampleError("--dask rebuilds the pose source in the workers: pass the checkpoint or training "
                          "store path (or a source loaded from one)")
    source = ref.load() if isinstance(source, (str, Path)) else source
    body = load_body_model(body_model)
    check_body_model(source, body)
    shapes = array_shapes(recipe, body.num_betas)
    _check_memory(shapes, layout)
    # The sampler checks the label and the augmentation; on a dask cluster the workers build their own.
    sampler = BlockSampler(source, recipe, seed, body, "cpu" if dask_address else device)
    return SampleRun(ref, recipe, seed, layout, device, workers, zarr_format,
                     None if body_model is None else str(body_model), sampler, shapes,
                     store_attrs(source, recipe, seed, body, out, device))


def _write_shards(run: SampleRun, path: Path, group: zarr.Group, todo: list[int], on_written: Callable[[int], None],
                  client: Any, progress: bool) -> None:
    """Generate and write the shards ``todo`` of the store at ``path``, here or on the dask cluster."""
    total = sum(stop - first for first, stop in map(run.layout.rows, todo))
    with tqdm(total=total, unit="sample", unit_scale=True, desc="sampling", disable=not progress) as bar:
        if client is not None:
            job = ShardJob(run.ref, str(path), run.recipe, run.seed, run.layout.n, str(run.device), run.body_model)
            write_dask(client, job, todo, on_written, bar.update)
        else:
            arrays = {name: group[name] for name in run.shapes}
            write_local(run.sampler, arrays, run.layout, run.shapes, todo, run.workers, on_written, bar.update)


MAX_BLOCK_BYTES = 2**30  # the arrays of one block; computing them takes several times more


def _check_memory(shapes: Shapes, layout: Layout) -> None:
    """SampleError when one block's arrays would not fit in ``MAX_BLOCK_BYTES`` (every block is
    computed whole, however few rows the store needs from it)."""
    row = sum(math.prod(tail) * np.dtype(dtype).itemsize for tail, dtype in shapes.values())
    block = row * layout.block
    if block > MAX_BLOCK_BYTES:
        views = shapes[camera_path("K")][0][0]
        fits = 2 ** int(math.log2(max(1, MAX_BLOCK_BYTES // row)))
        raise SampleError(f"one block of sample.block_size = {layout.block} rows with camera.views = {views} holds "
                          f"{block / 2**30:.1f} GiB of arrays (every block is computed whole, even for n = "
                          f"{layout.n}), over the {MAX_BLOCK_BYTES / 2**30:.0f} GiB limit; lower sample.block_size "
                          f"(to {fits} or less) or camera.views")


def _check_args(layout: Layout, workers: int, zarr_format: int) -> None:
    if isinstance(layout.n, bool) or not isinstance(layout.n, int) or layout.n < 1:
        raise SampleError(f"n must be a positive number of samples, got {layout.n!r}")
    if workers < 1:
        raise SampleError(f"workers must be >= 1, got {workers}")
    if zarr_format not in (2, 3):
        raise SampleError(f"zarr format must be 2 or 3, got {zarr_format}")
