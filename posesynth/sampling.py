"""``posesynth sample``: poses -> bodies -> cameras -> paired 2D/3D keypoints -> a sample store.

The pipeline, per block of ``block_size`` rows (``BlockSampler``):

1. poses from the pose source, in its canonical yaw (the body faces +z), and betas (the
   source's, or the prior's: ``sample.betas``), then the recipe's ``[augment]`` (wide bodies,
   tilted bodies, limb crossover: ``posesynth.augment``);
2. joints by forward kinematics on ``body.rest_joints(betas)`` (the mesh is never skinned; a
   keypoint set that needs surface points skins only those vertices), the body put standing
   on the floor over the origin (``floor_translation``);
3. keypoints of every requested set, ``V`` random cameras (``posesynth.cameras``), projection,
   visibility (in frame; not hidden by a capsule model of the body, ``posesynth.visibility``)
   and, when asked, detector-like noisy 2D (``posesynth.noise``).

Determinism: block ``b`` draws every random number from four CPU generators seeded from
``(seed, b)`` (``block_generators``), one per stream (pose, camera, noise, augment), and is
computed on its own, so a block's rows never depend on how blocks are batched, which process
computes them, or how the store is chunked.  Chunks and shards hold whole blocks.  The last block is
computed whole and cut, so a store of ``n`` rows is the first ``n`` rows of a longer one.

Writing (``sample_to_store``): every argument is checked first (``checked_run``: recipe,
source, body model, label, memory; a dask scheduler is connected), and only then is the store
locked and created incomplete (``posesynth.store.writing_store``: a replaced store is written
beside the old one and swapped in at the end), every array filled one whole shard at a time
(``posesynth.shard_file``: one pass over the rows, each shard file written atomically, rows
that are not finite refused), each finished shard recorded in the attribute ``shards_done``
(Zarr writes its metadata files atomically too, so this survives SIGKILL), and the store
marked complete at the very end.  ``resume=True`` recomputes only the missing shards.  In one
process, ``workers`` threads generate the blocks of a shard (torch releases the GIL; each
torch call runs on one thread) while a bounded pool of writer threads compresses and writes
the previous shards (Blosc and file I/O release the GIL too), with a fixed number of reused
shard buffers: memory does not grow with ``n``.  On a dask.distributed cluster
(``dask_address``), each task generates and writes one whole shard.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr
from tqdm import tqdm

from posesynth.body_model import BodyModel, load_body_model, shape_space
from posesynth.body_prior import body_model_prior
from posesynth.body_range import WideBodyRange
from posesynth.hardness import CANDIDATES_PER_SAMPLE, HardnessSelector
from posesynth.cameras import CAMERA_CONVENTION, project, sample_cameras
from posesynth.devices import resolve_device
from posesynth.errors import PosesynthError, os_reason, require_extra
from posesynth.gan.checkpoint import DEFAULT_CHECKPOINT
from posesynth.kinematics import forward_kinematics
from posesynth.keypoint_sets import KeypointSet, compute_keypoints, keypoint_sets
from posesynth.noise import add_detector_noise
from posesynth.pose_source import PoseSource, StorePoseSource, load_pose_source
from posesynth.rotations import matrix_to_axis_angle
from posesynth.run_record import run_record
from posesynth.sample_recipe import (
    DEFAULT_SAMPLE_RECIPE, augmentation, camera_distribution, detector_noise, resolve_sample_recipe,
    validate_sample_recipe,
)
from posesynth.shard_file import write_rows
from posesynth.skeleton import JOINT_INDEX, SMPL_JOINT_NAMES, SMPL_PARENTS
from posesynth.store import (
    ATTR, StoreError, StoreTarget, create_array, create_store, incomplete_store_error, mark_complete, open_group,
    open_store, writing_store,
)
from posesynth.visibility import BodyCapsules, in_frame, self_occlusion

KIND = "samples"
STREAMS = ("pose", "camera", "noise", "augment")
VISIBLE_IN_FRAME = 1  # bit 0 of keypoints/<set>/visible
VISIBLE_NOT_OCCLUDED = 2  # bit 1
WRITER_THREADS = 2


class SampleError(PosesynthError, RuntimeError):
    """``sample`` cannot run as asked (bad source, label, resume mismatch); the message says why."""


# ---------------------------------------------------------------------------- randomness
def block_seed(seed: int, block: int, stream: str) -> int:
    """A 63-bit seed for ``stream`` of block ``block`` of a run seeded with ``seed``."""
    digest = hashlib.sha256(f"posesynth.sample:{seed}:{block}:{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def block_generators(seed: int, block: int) -> dict[str, torch.Generator]:
    """One CPU generator per stream (``STREAMS``) for block ``block``."""
    return {s: torch.Generator().manual_seed(block_seed(seed, block, s)) for s in STREAMS}


# ---------------------------------------------------------------------------- the arrays
def array_shapes(recipe: dict[str, Any], num_betas: int) -> dict[str, tuple[tuple[int, ...], str]]:
    """Every array of the store: name -> (shape after the sample axis, dtype); see docs/sample_store.md."""
    V = recipe["camera"]["views"]
    shapes: dict[str, tuple[tuple[int, ...], str]] = {
        "smpl/global_orient": ((3,), "float32"),
        "smpl/body_pose": ((69,), "float32"),
        "smpl/betas": ((num_betas,), "float32"),
        "smpl/transl": ((3,), "float32"),
        "label": ((), "int32"),
        "camera/K": ((V, 3, 3), "float32"),
        "camera/R": ((V, 3, 3), "float32"),
        "camera/t": ((V, 3), "float32"),
        "camera/distortion": ((V, 4), "float32"),
        "camera/image_size": ((V, 2), "int32"),
    }
    for s in keypoint_sets(recipe["sample"]["keypoint_sets"]):
        J = len(s)
        shapes[f"keypoints/{s.name}/world"] = ((J, 3), "float32")
        shapes[f"keypoints/{s.name}/camera"] = ((V, J, 3), "float32")
        shapes[f"keypoints/{s.name}/pixels"] = ((V, J, 2), "float32")
        shapes[f"keypoints/{s.name}/visible"] = ((V, J), "uint8")
        if recipe["sample"]["noise"]:
            shapes[f"keypoints/{s.name}/pixels_noisy"] = ((V, J, 2), "float32")
    return shapes


# ---------------------------------------------------------------------------- one block
def sole_clearance(body: BodyModel) -> float:
    """Height (m) of the rest foot joints above the sole (the lowest rest vertex)."""
    feet = body.J_template[[JOINT_INDEX["left_foot"], JOINT_INDEX["right_foot"]], 1].min()
    return float(feet - body.smpl.v_template[:, 1].min())


def floor_translation(joints: torch.Tensor, clearance: float) -> torch.Tensor:
    """SMPL ``transl`` (B, 3) that puts bodies with FK joints (B, 24, 3) over the origin (pelvis
    at x = z = 0) and on the floor (the lowest joint ``clearance`` above y = 0)."""
    t = -joints[:, 0].clone()
    t[:, 1] = clearance - joints[:, :, 1].amin(1)
    return t


class BlockSampler:
    """Generates whole blocks of a run: ``block(b)`` -> {array name: (block_size, ...) numpy}."""

    def __init__(self, source: PoseSource, recipe: dict[str, Any], seed: int, body: BodyModel,
                 device: torch.device | str = "cpu") -> None:
        self.augment = augmentation(recipe)
        self.source = tempered(source, self.augment.temperature)
        self.seed = seed
        self.device = torch.device(device)
        self.body = body.to(self.device)
        self.size = recipe["sample"]["block_size"]
        self.sets = keypoint_sets(recipe["sample"]["keypoint_sets"])
        self.cameras = camera_distribution(recipe)
        self.noise = detector_noise(recipe) if recipe["sample"]["noise"] else None
        self.prior_betas = recipe["sample"]["betas"] == "prior"
        self.label = label_index(source, recipe["sample"]["label"])
        self.bodies = WideBodyRange.for_body(self.body) if self.augment.wide_bodies else None
        self.hardness = (HardnessSelector(self.augment.hardness_lifter, self.augment.hardness, self.body, self.cameras)
                         if self.augment.hardness else None)
        self.capsules = BodyCapsules.from_body(body)
        self.clearance = sole_clearance(body)
        self.distinct, self.columns = distinct_keypoints(self.sets)

    @torch.no_grad()
    def block(self, b: int) -> dict[str, np.ndarray]:
        """Rows ``[b * size, (b + 1) * size)`` of the run: every array of ``array_shapes``,
        (size, ...) numpy, computed on ``device`` from block ``b``'s own generators."""
        g = block_generators(self.seed, b)
        rotmats, betas, labels = self._poses(g)
        global_rotmats, joints = forward_kinematics(rotmats, self.body.rest_joints(betas))
        transl = floor_translation(joints, self.clearance)
        joints = joints + transl[:, None]
        cams = sample_cameras(self.cameras, joints, g["camera"], self.device)
        out = {
            "smpl/global_orient": matrix_to_axis_angle(rotmats[:, 0]),
            "smpl/body_pose": matrix_to_axis_angle(rotmats[:, 1:]).flatten(1),
            "smpl/betas": betas, "smpl/transl": transl, "label": labels.to(torch.int32),
            "camera/K": cams.K, "camera/R": cams.R, "camera/t": cams.t,
            "camera/distortion": cams.distortion, "camera/image_size": cams.image_size,
        }
        world = compute_keypoints([s.name for s in self.sets], self.body, global_rotmats, joints, betas)
        hidden = self._self_occlusion(world, joints, global_rotmats, betas, cams)
        for s in self.sets:
            out.update(self._keypoints(s, world[s.name], hidden[s.name], cams, g["noise"]))
        return {k: v.cpu().numpy() for k, v in out.items()}

    def _poses(self, g: dict[str, torch.Generator]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The block's poses (size, 24, 3, 3), bodies (size, K) and labels (size,): drawn from the
        source, augmented, and (with ``augment.hardness``) the hard half of twice as many kept."""
        n = self.size * (CANDIDATES_PER_SAMPLE if self.hardness else 1)
        poses = self.source.sample(n, g["pose"], self.label, self.device)
        betas = body_model_prior(self.body.num_betas).sample(n, g["pose"]) if self.prior_betas else poses.betas
        betas = self._pad_betas(betas.to(self.device, self.body.dtype))
        rotmats = poses.rotmats.to(self.device, self.body.dtype)
        rotmats, betas = self.augment.apply(rotmats, betas, g["augment"], self.bodies)
        if self.hardness is None:
            return rotmats, betas, poses.labels
        keep = self.hardness.select(rotmats, betas, self.size, g["augment"]).to(rotmats.device)
        return rotmats[keep], betas[keep], poses.labels[keep]

    def _self_occlusion(self, world, joints, global_rotmats, betas, cams) -> dict[str, torch.Tensor]:
        """Per set, (B, V, J) bool hidden by the body; each distinct keypoint is tested once."""
        capsules = self.capsules.capsules_for(joints, global_rotmats, betas)
        points = torch.stack([world[name][:, k] for name, k in self.distinct.picks], dim=1)
        hidden = self_occlusion(points, cams.centres, capsules, self.distinct.keypoints)
        return {name: hidden[:, :, cols] for name, cols in self.columns.items()}

    def _pad_betas(self, betas: torch.Tensor) -> torch.Tensor:
        K = self.body.num_betas
        if betas.shape[1] > K:
            raise SampleError(f"the pose source gives {betas.shape[1]} betas; the body model has {K}")
        return torch.nn.functional.pad(betas, (0, K - betas.shape[1]))

    def _keypoints(self, s, world, hidden, cams, noise_generator) -> dict[str, torch.Tensor]:
        """Arrays of one keypoint set from its world keypoints (B, J, 3) and hidden (B, V, J)."""
        pixels, points_cam = project(world, cams)
        visible = in_frame(pixels, cams.image_size, points_cam[..., 2]).to(torch.uint8) * VISIBLE_IN_FRAME
        visible += (~hidden).to(torch.uint8) * VISIBLE_NOT_OCCLUDED
        out = {f"keypoints/{s.name}/world": world, f"keypoints/{s.name}/camera": points_cam,
               f"keypoints/{s.name}/pixels": pixels, f"keypoints/{s.name}/visible": visible}
        if self.noise is not None:
            out[f"keypoints/{s.name}/pixels_noisy"] = add_detector_noise(pixels, s, self.noise, noise_generator)
        return out


@dataclass(frozen=True)
class DistinctKeypoints:
    """The distinct keypoints (same derivation) of several sets, as one ``KeypointSet``."""

    keypoints: KeypointSet
    picks: tuple[tuple[str, int], ...]  # per distinct keypoint: (set name, index) of its first use


def distinct_keypoints(sets: list[KeypointSet]) -> tuple[DistinctKeypoints, dict[str, list[int]]]:
    """The sets' distinct keypoints and, per set, the column of each of its keypoints among them
    (smpl24, h36m17 and coco17 share most joints: 31 distinct of 58)."""
    column: dict[tuple, int] = {}
    picks: list[tuple[str, int]] = []
    columns: dict[str, list[int]] = {}
    for s in sets:
        for k, src in enumerate(s.sources):
            if src not in column:
                column[src] = len(picks)
                picks.append((s.name, k))
        columns[s.name] = [column[src] for src in s.sources]
    sources = tuple(column)
    union = KeypointSet(name="+".join(s.name for s in sets), parents=None, edges=(), derivation="",
                        joint_names=tuple(f"{name}:{k}" for name, k in picks), sources=sources)
    return DistinctKeypoints(union, tuple(picks)), columns


def tempered(source: PoseSource, temperature: float) -> PoseSource:
    """``source`` drawing at ``temperature`` (``augment.temperature``; GAN checkpoints only)."""
    if temperature == 1.0:
        return source
    if not hasattr(source, "tempered"):
        raise SampleError(f"augment.temperature = {temperature}: {source.identity} is not a GAN checkpoint; "
                          f"only a generator's latents can be tempered")
    return source.tempered(temperature)


def label_index(source: PoseSource, name: str) -> int | None:
    """The index of label ``name`` in the source's vocabulary (None for "")."""
    if not name:
        return None
    if name not in source.label_names:
        known = ", ".join(source.label_names) or "none: the source is unconditional"
        raise SampleError(f"{source.identity} has no label {name!r}; its labels: {known}")
    return source.label_names.index(name)


# ---------------------------------------------------------------------------- layout
@dataclass(frozen=True)
class Layout:
    """How ``n`` rows split into blocks, chunks and shards (shards hold whole blocks)."""

    n: int
    block: int
    chunk: int
    shard: int

    @property
    def num_shards(self) -> int:
        return math.ceil(self.n / self.shard)

    def rows(self, shard: int) -> tuple[int, int]:
        """First and past-the-end row of ``shard``."""
        return shard * self.shard, min(self.n, (shard + 1) * self.shard)

    def blocks(self, shard: int) -> range:
        start, stop = self.rows(shard)
        return range(start // self.block, math.ceil(stop / self.block))

    @classmethod
    def of(cls, recipe: dict[str, Any], n: int) -> Layout:
        s = recipe["sample"]
        return cls(n, s["block_size"], s["chunk_size"], s["shard_size"])


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
    """Write ``shard``'s rows of every array from ``buffer``: whole shards, one file each
    (``posesynth.shard_file``: one pass over the rows).  Rows that are not finite in the
    stored dtype are refused (SampleError) before anything of the shard is written."""
    start, stop = layout.rows(shard)
    rows = {name: buffer[name][:stop - start] for name in arrays}
    check_finite(rows, f"rows {start}..{stop - 1}")
    for name, arr in arrays.items():
        write_rows(arr, start, rows[name])


def check_finite(arrays: dict[str, np.ndarray], where: str) -> None:
    """SampleError naming the first float array of ``arrays`` that holds a NaN or an infinity."""
    for name, values in arrays.items():
        # A sum is one fast pass and is finite for finite rows (unless they overflow it: then look closer).
        with np.errstate(over="ignore", invalid="ignore"):
            suspect = values.dtype.kind == "f" and not np.isfinite(values.sum())
        if suspect and not np.isfinite(values).all():
            raise SampleError(f"{name}, {where}: NaN or infinite values in the stored {values.dtype}; the pose "
                              "source or the recipe gives impossible samples, so the store is left incomplete")


def new_buffer(shapes: dict[str, tuple[tuple[int, ...], str]], layout: Layout) -> dict[str, np.ndarray]:
    """Room for one shard of every array."""
    rows = min(layout.shard, layout.n)
    return {name: np.empty((rows,) + tail, dtype=dtype) for name, (tail, dtype) in shapes.items()}


# ---------------------------------------------------------------------------- writing in this process
class ShardWriter:
    """Writes whole shards on ``threads`` background threads while the caller fills the next.

    At most ``threads`` shards are in flight and ``threads + 1`` buffers exist, reused, so
    memory is bounded whatever the number of shards.  ``on_written(shard)`` runs in the
    caller's thread once a shard is on disk.
    """

    def __init__(self, arrays: dict[str, zarr.Array], layout: Layout,
                 shapes: dict[str, tuple[tuple[int, ...], str]], on_written: Callable[[int], None],
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
                shapes: dict[str, tuple[tuple[int, ...], str]], shards: list[int], workers: int,
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


# ---------------------------------------------------------------------------- writing on a dask cluster
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
    recipe: dict[str, Any]
    seed: int
    n: int
    device: str
    body_model: str | None


_WORKER_CACHE: dict[str, tuple[BlockSampler, dict[str, zarr.Array], dict[str, np.ndarray]]] = {}


def _worker_state(job: ShardJob) -> tuple[BlockSampler, dict[str, zarr.Array], dict[str, np.ndarray]]:
    """This process's sampler, open arrays and shard buffer for ``job`` (built once per process)."""
    key = _canonical([job.source.path, job.source.options, job.out, job.recipe, job.seed, job.n])
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


# ---------------------------------------------------------------------------- the run
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
    recipe: dict[str, Any] | None = None,
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
        recipe: a resolved sampling recipe (``resolve_sample_recipe``); None: the default one.
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
        group, done = _open_for_writing(target, run)
        todo = [s for s in range(run.layout.num_shards) if s not in done]
        resumed = bool(done)
        try:
            _write_shards(run, target.path, group, todo, _shard_recorder(group, done), client, progress)
        except OSError as exc:
            raise StoreError(_disk_error(target, exc)) from exc
        mark_complete(group, num_samples=n)
    return SampleSummary(Path(out), n, len(todo), time.perf_counter() - start, resumed)


@dataclass(frozen=True)
class SampleRun:
    """Everything a run needs, checked before the store is touched (``checked_run``)."""

    ref: SourceRef | None
    recipe: dict[str, Any]
    seed: int
    layout: Layout
    device: torch.device
    workers: int
    zarr_format: int
    body_model: str | None
    sampler: BlockSampler
    shapes: dict[str, tuple[tuple[int, ...], str]]
    attrs: dict[str, Any]


def checked_run(source: PoseSource | str | Path, n: int, seed: int, recipe: dict[str, Any] | None,
                device: str | torch.device, workers: int | None, dask_address: str | None, zarr_format: int,
                body_model: str | Path | None, out: Path) -> SampleRun:
    """Check every argument of ``sample_to_store`` (recipe, layout, device, source, body model,
    label, memory) and load the source, the body and the sampler for the store at ``out``;
    nothing is written."""
    recipe = validate_sample_recipe(recipe if recipe is not None else resolve_sample_recipe(DEFAULT_SAMPLE_RECIPE))
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
    _check_body(source, body)
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


def _check_memory(shapes: dict[str, tuple[tuple[int, ...], str]], layout: Layout) -> None:
    """SampleError when one block's arrays would not fit in ``MAX_BLOCK_BYTES`` (every block is
    computed whole, however few rows the store needs from it)."""
    row = sum(math.prod(tail) * np.dtype(dtype).itemsize for tail, dtype in shapes.values())
    block = row * layout.block
    if block > MAX_BLOCK_BYTES:
        views = shapes["camera/K"][0][0]
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


def _check_body(source: PoseSource, body: BodyModel) -> None:
    made_with = getattr(source, "body_model", None)
    if made_with is not None and made_with != body.identity:
        raise SampleError(f"{source.identity} was made with body model {made_with}, but sampling uses "
                          f"{body.identity}; pass that model's file (--body-model)")


def _disk_error(target: StoreTarget, exc: OSError) -> str:
    where = (f"the new store is left incomplete at {target.path} and the old one at {target.final} untouched"
             if target.replacing else "the store is left marked incomplete")
    return (f"cannot write {target.path}: {os_reason(exc)}; {where} (free space or fix the path, then run "
            "again with --resume)")


# ---------------------------------------------------------------------------- the store
def store_attrs(source: PoseSource, recipe: dict[str, Any], seed: int, body: BodyModel, out: Path,
                device: torch.device) -> dict[str, Any]:
    """The group attributes of the sample store at ``out`` (docs/sample_store.md), bar ``posesynth``."""
    return {
        "recipe": recipe,
        "seed": seed,
        "source": {"identity": source.identity, "path": source_path(getattr(source, "path", None), out),
                   "sha256": getattr(source, "sha256", None), "label_field": getattr(source, "label_field", None)},
        "labels": list(source.label_names),
        "keypoint_sets": {s.name: s.to_attrs() for s in keypoint_sets(recipe["sample"]["keypoint_sets"])},
        "skeleton": {"joint_names": list(SMPL_JOINT_NAMES), "parents": list(SMPL_PARENTS)},
        "camera_convention": CAMERA_CONVENTION,
        "visibility": "keypoints/<set>/visible: bit 0 = in frame, bit 1 = not self-occluded "
                      "(capsule model of the body, posesynth.visibility); 3 = visible",
        "units": {"3d": "metres", "2d": "pixels", "angles": "radians (axis-angle)"},
        "body_model": body.identity,
        "shape_space": shape_space(body),
        "block_size": recipe["sample"]["block_size"],
        "shards_done": [],
        "run": run_record(device),
    }


def source_path(path: str | Path | None, out: Path) -> str | None:
    """Where the source at ``path`` is, for the store at ``out``: relative to the folder holding
    the store (``../train.zarr``, POSIX separators); None without a path, for posesynth's shipped
    checkpoint (its identity and hash name it) and where no relative path exists (another drive)."""
    if path is None or Path(path).resolve() == DEFAULT_CHECKPOINT.resolve():
        return None
    try:
        return Path(os.path.relpath(Path(path).resolve(), out.resolve().parent)).as_posix()
    except ValueError:
        return None


_RUN_KEYS = ("recipe", "seed", "source", "body_model", "block_size")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _open_for_writing(target: StoreTarget, run: SampleRun) -> tuple[zarr.Group, set[int]]:
    """At ``target.path``: a new store with every array created, or (resume) the existing one,
    checked to be the same run, and its shards done."""
    path = target.path
    if not target.resume:
        group = create_store(path, KIND, run.attrs, zarr_format=run.zarr_format, meta={"num_samples": run.layout.n})
        _create_arrays(path, group, run, set())
        return group, set()
    group = open_store(path, kind=KIND, allow_incomplete=True)
    _check_same_run(path, group, run)
    remove_partial_files(path)
    group = open_group(path, mode="r+")
    done = set(group.attrs["shards_done"])
    _create_arrays(path, group, run, done)
    return group, done


def _create_arrays(path: Path, group: zarr.Group, run: SampleRun, done: set[int]) -> None:
    """Create every array of the run the store lacks (a resumed run stopped while creating them)."""
    missing = [name for name in run.shapes if name not in group]
    if missing and done:
        raise incomplete_store_error(path, "arrays", missing)
    try:
        for name in missing:
            tail, dtype = run.shapes[name]
            create_array(group, name, (run.layout.n,) + tail, dtype, run.layout.chunk, run.layout.shard)
    except OSError as exc:
        raise StoreError(_disk_error(StoreTarget(path, path), exc)) from exc


def remove_partial_files(out: Path) -> None:
    """Delete the temporary files a killed writer leaves (Zarr and ``posesynth.shard_file`` write
    ``<key>.<uuid hex>.partial`` and rename it into place)."""
    try:
        for f in out.rglob("*.partial"):
            if re.fullmatch(r".*\.[0-9a-f]{32}\.partial", f.name):
                f.unlink(missing_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot resume {out}: cannot remove the temporary files of the interrupted run: "
                         f"{os_reason(exc)}") from None


_MISSING = object()


def _check_same_run(out: Path, group: zarr.Group, run: SampleRun) -> None:
    """Refuse to resume a store written with other arguments, naming the first that differs."""
    recorded = dict(group.attrs)
    missing = [key for key in (*_RUN_KEYS, "shards_done") if key not in recorded]
    missing += [f"{ATTR}.num_samples"] if "num_samples" not in recorded[ATTR] else []
    if missing:
        raise incomplete_store_error(out, "attributes", missing)
    for key in _RUN_KEYS:
        diff = _first_difference(recorded[key], run.attrs[key], key)
        if diff is not None:
            name, was, now = diff
            raise SampleError(f"{out}: cannot resume: its {key} differs from this run's ({name} is {_shown(was)} in "
                              f"the store, {_shown(now)} in this run); resume with the same arguments, or pass "
                              "--overwrite")
    if recorded[ATTR]["num_samples"] != run.layout.n:
        raise SampleError(f"{out}: cannot resume: it holds {recorded[ATTR]['num_samples']} samples, "
                          f"this run asks for {run.layout.n}")
    if group.metadata.zarr_format != run.zarr_format:
        raise SampleError(f"{out}: cannot resume: it is Zarr v{group.metadata.zarr_format}, not v{run.zarr_format}")


def _first_difference(was: Any, now: Any, key: str) -> tuple[str, Any, Any] | None:
    """The dotted key and both values of the first leaf that differs between two JSON values."""
    if isinstance(was, dict) and isinstance(now, dict):
        for k in sorted(set(was) | set(now)):
            diff = _first_difference(was.get(k, _MISSING), now.get(k, _MISSING), f"{key}.{k}")
            if diff is not None:
                return diff
        return None
    return None if _canonical(was) == _canonical(now) else (key, was, now)


def _shown(value: Any) -> str:
    return "not set" if value is _MISSING else _canonical(value)[:200]


def _shard_recorder(group: zarr.Group, done: set[int]) -> Callable[[int], None]:
    """A callback recording a written shard in the attribute ``shards_done`` (an atomic file write)."""
    def mark(shard: int) -> None:
        done.add(shard)
        group.attrs["shards_done"] = sorted(done)
    return mark
