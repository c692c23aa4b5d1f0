"""Feeding trainers from stores: torch datasets over sample (and training) stores, and mixing.

- ``PoseStoreDataset``: map-style, ``ds[i]`` is a dict of tensors.  It also has
  ``__getitems__``, so a ``DataLoader`` with a ``batch_size`` reads each batch with one
  orthogonal read per array (each chunk touched once), not row by row.  A fully random batch
  still decompresses about one chunk per row on a big store (about 3k rows/s on 1M rows, 2
  workers): for shuffled epochs prefer
- ``PoseStoreIterable``: chunk-aware batches (about 160k rows/s on the same store): the chunk
  order is shuffled (per epoch: call ``set_epoch``), ``window`` whole chunks are read at a time
  and their rows shuffled together, and batches of ``batch_size`` rows come out as dicts of
  tensors.  Use it with ``DataLoader(ds, batch_size=None, num_workers=...)``.
- ``mix([(real, 1.0), (synth, 3.0)])``: one stream of batches whose rows come from each store with
  probability proportional to its weight (stores given as paths or ``PoseStoreIterable``).

**Sharding** (``PoseStoreIterable``), so that each row comes out exactly once per epoch across
all DDP ranks and DataLoader workers:

1. Ranks: the epoch's rows, in its shuffled chunk order, are cut into ``world_size`` runs of
   ``N // world_size`` or ``N // world_size + 1`` rows; rank ``r`` takes the r-th run
   (``PoseStoreIterable.rank_pieces``).  The rank and world size are the ones given, else
   ``torch.distributed``'s when it is initialised when the dataset is made, else 0 and 1.
2. Workers: the rank's run is a list of pieces (whole chunks, and at its two ends parts of
   chunks); DataLoader worker ``k`` of ``K`` takes every K-th piece from the k-th.

Which rows a rank reads depends only on the seed, the epoch, its rank and the world size; their
order also on the number of workers.  When the counts do not divide, nothing is padded or
dropped: ranks differ by at most one row, and a worker with no piece yields nothing.  Each
worker's last batch may be short, so a rank yields ``len(ds)`` batches or up to K - 1 more
(fewer with ``drop_last``).  A DDP loop must therefore tolerate unequal step counts (for
example with ``torch.distributed.algorithms.Join``), or stop every rank after the smallest
``len`` over the ranks (``ceil(rank_rows(r) / batch_size)``; without ``drop_last`` every rank
has at least that many batches).
For the map-style ``PoseStoreDataset`` use ``torch.utils.data.DistributedSampler``.
``mix`` shards too: rank ``r`` makes every ``world_size``-th of the ``num_batches`` batches
from its own share of each store.

Fields (``fields=``), for the keypoint set ``keypoint_set`` of a **sample store** (``V`` views,
or the one view ``view``, which drops the V axis):

=====================  ===================  =================================================
field                  shape, dtype         content
=====================  ===================  =================================================
``pixels``             (V, J, 2) float32    2D pixels (``noisy=True``: the detector-noise copy)
``pixels_normalised``  (V, J, 2) float32    the same, VideoPose3D-normalised: ``p / W * 2 - [1, H / W]``
``camera``             (V, J, 3) float32    3D, camera frame, metres
``world``              (J, 3) float32       3D, world frame, metres
``visible``            (V, J) bool          in frame and not self-occluded
``K``                  (V, 3, 3) float32    intrinsics
``label``              () int64             index into the store's ``labels`` (-1: none)
``global_orient``, ``body_pose``, ``betas``, ``transl``: SMPL parameters, float32
=====================  ===================  =================================================

A **training store** (from ``prepare``) has no cameras: it supports ``world`` (its smpl24
joints, where the mocap put them), ``label`` (of ``label_field``), the SMPL parameters, and
``split="train"`` or ``"val"``.  For 2D,
put its poses through random cameras first: ``posesynth sample --checkpoint train.zarr ...``.

Incomplete stores are refused (``posesynth.store.open_store``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from posesynth.errors import PosesynthError
from posesynth.store import ATTR, StoreError, open_store
from posesynth.stores import samples, training

DEFAULT_FIELDS = ("pixels", "camera", "world", "visible", "K")
SMPL_FIELDS = ("global_orient", "body_pose", "betas", "transl")
SAMPLE_FIELDS = ("pixels", "pixels_normalised", "camera", "world", "visible", "K", "label") + SMPL_FIELDS
TRAINING_FIELDS = ("world", "label") + SMPL_FIELDS
Batch = dict[str, torch.Tensor]


class DataError(PosesynthError, ValueError):
    """A dataset that cannot be made as asked; the message says why."""


# ---------------------------------------------------------------------------- reading a store
class StoreReader:
    """Reads the requested fields of rows of one store as numpy arrays (picklable: the store
    is reopened lazily in each process)."""

    def __init__(self, path: str | Path, keypoint_set: str = "h36m17", view: int | None = None,
                 noisy: bool = False, split: str | None = None, fields: Sequence[str] = DEFAULT_FIELDS,
                 label_field: str = "content") -> None:
        self.path = Path(path)
        self.fields = tuple(fields)
        if not self.fields or isinstance(fields, str):
            raise DataError(f"fields must be a non-empty sequence of field names, got {fields!r}")
        group = open_store(self.path)
        self.kind = group.attrs[ATTR]["kind"]
        if self.kind == samples.KIND:
            self.arrays = self._sample_arrays(group, keypoint_set, noisy, split)
            self.view = self._check_view(group, view)
        elif self.kind == training.KIND:
            self.arrays = self._training_arrays(group, keypoint_set, view, noisy, label_field)
            self.view = None
        else:
            raise DataError(f"{self.path}: cannot read a {self.kind!r} store")
        self.rows = self._split_rows(group, split)
        self.chunk = group[next(iter(self.arrays.values()))].chunks[0]
        self._group: zarr.Group | None = None

    def _sample_arrays(self, group: zarr.Group, keypoint_set: str, noisy: bool, split: str | None) -> dict[str, str]:
        unknown = [f for f in self.fields if f not in SAMPLE_FIELDS]
        if unknown:
            raise DataError(f"unknown field(s) {unknown}; a sample store has {', '.join(SAMPLE_FIELDS)}")
        if split is not None:
            raise DataError(f"{self.path}: a sample store has no splits (split={split!r}); use separate stores")
        if keypoint_set not in group.attrs["keypoint_sets"]:
            raise DataError(f"{self.path}: no keypoint set {keypoint_set!r}; it has "
                            f"{', '.join(group.attrs['keypoint_sets'])}")
        pixels = samples.keypoints_path(keypoint_set, samples.NOISY if noisy else "pixels")
        if noisy and pixels not in group:
            raise DataError(f"{self.path}: the store has no noisy 2D (its recipe has sample.noise = false)")
        names = {"pixels": pixels, "pixels_normalised": pixels,
                 **{f: samples.keypoints_path(keypoint_set, f) for f in ("camera", "world", "visible")},
                 "K": samples.camera_path("K"), "label": samples.LABEL_PATH,
                 **{f: samples.smpl_path(f) for f in SMPL_FIELDS}}
        arrays = {f: names[f] for f in self.fields}
        if "pixels_normalised" in self.fields:
            arrays["_image_size"] = samples.camera_path("image_size")
        return arrays

    def _training_arrays(self, group: zarr.Group, keypoint_set: str, view: int | None, noisy: bool,
                         label_field: str) -> dict[str, str]:
        unsupported = [f for f in self.fields if f not in TRAINING_FIELDS]
        if unsupported or view is not None or noisy:
            raise DataError(f"{self.path} is a training store: it has no cameras, so no {unsupported or 'views'}; "
                            f"it supports {', '.join(TRAINING_FIELDS)}.  For 2D, sample its poses through random "
                            f"cameras: posesynth sample --checkpoint {self.path} --out real.zarr")
        if keypoint_set != "smpl24" and "world" in self.fields:
            raise DataError(f"{self.path} is a training store: its joints are smpl24 (got keypoint_set={keypoint_set!r})")
        if label_field not in group.attrs["labels"]:
            raise DataError(f"{self.path}: no label field {label_field!r}; it has {sorted(group.attrs['labels'])}")
        names = {"world": training.JOINTS_PATH, "label": training.label_path(label_field),
                 **{f: training.smpl_path(f) for f in SMPL_FIELDS}}
        return {f: names[f] for f in self.fields}

    def _check_view(self, group: zarr.Group, view: int | None) -> int | None:
        V = samples.num_views(group)
        if view is not None and not 0 <= view < V:
            raise DataError(f"{self.path}: view {view} out of range; the store has {V} view(s)")
        return view

    def _split_rows(self, group: zarr.Group, split: str | None) -> np.ndarray | None:
        """Rows of the split (None: every row)."""
        if split is None or self.kind != training.KIND:
            return None
        try:
            return training.split_rows(group, split, self.path)
        except StoreError as exc:
            raise DataError(str(exc)) from None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_group": None}

    @property
    def num_rows(self) -> int:
        """Rows of the whole store (before any split)."""
        return self._array(next(iter(self.arrays))).shape[0]

    def _array(self, field: str) -> zarr.Array:
        if self._group is None:
            self._group = zarr.open_group(str(self.path), mode="r")
        return self._group[self.arrays[field]]

    def read(self, rows: slice | np.ndarray) -> dict[str, np.ndarray]:
        """The fields of ``rows`` (a slice, or sorted unique row indices), numpy: each (n, ...)
        with the shape after the row axis the module doc's table gives."""
        raw = {f: (self._array(f)[rows] if isinstance(rows, slice) else self._array(f).oindex[rows])
               for f in self.arrays}
        return self._finish(raw)

    def _finish(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The stored arrays (n, ...) as the fields: pixels normalised, ``visible`` (n, V, J) bool
        from its bits, labels int64, and the V axis dropped for one ``view``."""
        out = {}
        for f in self.fields:
            x = raw[f]
            if f == "pixels_normalised":
                x = normalise_pixels(x, raw["_image_size"])
            elif f == "visible":
                x = x == samples.VISIBLE
            elif f == "label":
                x = x.astype(np.int64)
            if self.view is not None and f in ("pixels", "pixels_normalised", "camera", "visible", "K"):
                x = x[:, self.view]
            out[f] = x
        return out


def normalise_pixels(pixels: np.ndarray, image_size: np.ndarray) -> np.ndarray:
    """VideoPose3D's screen normalisation: pixels (n, V, J, 2), image_size (n, V, 2) (W, H) ->
    ``p / W * 2 - [1, H / W]`` (x in [-1, 1], aspect ratio kept)."""
    size = image_size.astype(np.float32)
    W = size[..., 0][..., None, None]
    offset = np.stack([np.ones_like(size[..., 0]), size[..., 1] / size[..., 0]], -1)[:, :, None, :]
    return (pixels / W * 2 - offset).astype(np.float32)


def _tensors(arrays: dict[str, np.ndarray]) -> Batch:
    """The arrays as tensors of the same shapes (sharing memory where they are contiguous)."""
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}


# ---------------------------------------------------------------------------- map-style
class PoseStoreDataset(Dataset):
    """Map-style dataset over a store; see the module doc for the fields and their shapes."""

    def __init__(self, path: str | Path, keypoint_set: str = "h36m17", view: int | None = None,
                 noisy: bool = False, split: str | None = None, fields: Sequence[str] = DEFAULT_FIELDS,
                 label_field: str = "content") -> None:
        self.reader = StoreReader(path, keypoint_set, view, noisy, split, fields, label_field)

    def __len__(self) -> int:
        rows = self.reader.rows
        return self.reader.num_rows if rows is None else len(rows)

    def _store_rows(self, indices: Sequence[int]) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"index out of range for a dataset of {len(self)} rows")
        idx = idx % max(1, len(self))
        return idx if self.reader.rows is None else self.reader.rows[idx]

    def __getitems__(self, indices: Sequence[int]) -> list[Batch]:
        """Rows ``indices`` (any order, repeats allowed), read one chunk at a time: one dict of
        per-row tensors (no batch axis) per index."""
        rows = self._store_rows(indices)
        unique, inverse = np.unique(rows, return_inverse=True)
        arrays = self.reader.read(unique)
        return [{k: torch.from_numpy(np.array(v[j])) for k, v in arrays.items()} for j in inverse]

    def __getitem__(self, index: int) -> Batch:
        return self.__getitems__([index])[0]


# ---------------------------------------------------------------------------- sharding
def distributed_rank(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """(rank, world_size): the ones given (both or neither), else ``torch.distributed``'s when
    it is initialised, else (0, 1)."""
    if rank is None and world_size is None:
        dist = torch.distributed
        return (dist.get_rank(), dist.get_world_size()) if dist.is_available() and dist.is_initialized() else (0, 1)
    if rank is None or world_size is None:
        raise DataError(f"give both rank and world_size, or neither (got rank={rank}, world_size={world_size})")
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (rank, world_size)) \
            or world_size < 1 or not 0 <= rank < world_size:
        raise DataError(f"rank must be an integer in 0..world_size - 1 and world_size an integer >= 1, "
                        f"got rank={rank!r}, world_size={world_size!r}")
    return rank, world_size


def _worker() -> tuple[int, int]:
    """(k, K): this process is DataLoader worker k of K (the main process: (0, 1))."""
    info = get_worker_info()
    return (info.id, info.num_workers) if info else (0, 1)


# ---------------------------------------------------------------------------- chunk-aware iterable
class PoseStoreIterable(IterableDataset):
    """Shuffled batches read whole chunks at a time, sharded over DDP ranks and DataLoader
    workers; see the module doc.  ``rank``, ``world_size``: this process's share (both or
    neither; default: ``torch.distributed``'s when it is initialised, else the whole store)."""

    def __init__(self, path: str | Path, batch_size: int, shuffle: bool = True, seed: int = 0, window: int = 8,
                 drop_last: bool = False, keypoint_set: str = "h36m17", view: int | None = None, noisy: bool = False,
                 split: str | None = None, fields: Sequence[str] = DEFAULT_FIELDS, label_field: str = "content",
                 rank: int | None = None, world_size: int | None = None) -> None:
        if batch_size < 1 or window < 1:
            raise DataError(f"batch_size and window must be >= 1, got {batch_size} and {window}")
        self.reader = StoreReader(path, keypoint_set, view, noisy, split, fields, label_field)
        self.batch_size, self.shuffle, self.seed, self.window, self.drop_last = batch_size, shuffle, seed, window, drop_last
        self.rank, self.world_size = distributed_rank(rank, world_size)
        self.epoch = 0
        n, c = self.reader.num_rows, self.reader.chunk
        self._keep = None if self.reader.rows is None else np.isin(np.arange(n), self.reader.rows)
        self.num_rows = n if self._keep is None else int(self._keep.sum())
        self._chunk_rows = (np.minimum(c, n - c * np.arange(self.num_chunks)) if self._keep is None
                            else np.bincount(self.reader.rows // c, minlength=self.num_chunks))

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for ``epoch`` (call it before each epoch, as with DistributedSampler)."""
        self.epoch = epoch

    def rank_rows(self, rank: int | None = None) -> int:
        """Rows per epoch of ``rank`` (default: this dataset's)."""
        r = self.rank if rank is None else rank
        return (r + 1) * self.num_rows // self.world_size - r * self.num_rows // self.world_size

    def __len__(self) -> int:
        """Batches per epoch of this rank with one worker; K workers each end on a short batch, so
        there may be up to K - 1 more (with ``drop_last``, up to K - 1 fewer)."""
        n = self.rank_rows()
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    @property
    def num_chunks(self) -> int:
        return math.ceil(self.reader.num_rows / self.reader.chunk)

    def __iter__(self) -> Iterator[Batch]:
        part = _worker()
        rank = (self.rank, self.world_size)
        return self.batches(self.epoch, part, stream=self.rank + part[0] * self.world_size, rank=rank)

    def rank_pieces(self, epoch: int, rank: tuple[int, int] = (0, 1)) -> np.ndarray:
        """Rank ``r`` of ``R``'s share of ``epoch`` (``rank`` = (r, R)): pieces (P, 3) int64 of
        (chunk, start, stop), the chunk's split rows ``start:stop``, in the epoch's chunk order.
        The epoch's rows in that order are cut into R runs of ``N // R`` or one more rows."""
        order = np.arange(self.num_chunks)
        if self.shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(order)
        counts = self._chunk_rows[order]
        first = np.cumsum(counts) - counts  # position of each chunk's first row in the epoch
        r, R = rank
        lo, hi = r * self.num_rows // R, (r + 1) * self.num_rows // R
        start, stop = np.clip(lo - first, 0, counts), np.clip(hi - first, 0, counts)
        keep = stop > start
        return np.stack([order[keep], start[keep], stop[keep]], axis=1)

    def batches(self, epoch: int, part: tuple[int, int] = (0, 1), stream: int = 0,
                rank: tuple[int, int] = (0, 1)) -> Iterator[Batch]:
        """Batches of part ``k`` of ``K`` (every K-th piece from the k-th) of rank ``rank``'s share
        of ``epoch`` (``rank_pieces``); ``stream`` seeds the shuffling of rows within windows.  Each
        batch: field -> (batch_size, ...) tensor (the last may be shorter)."""
        pieces = self.rank_pieces(epoch, rank)[part[0]::part[1]]
        rng = np.random.default_rng([self.seed, epoch, 1 + stream])
        carry: dict[str, np.ndarray] | None = None
        for i in range(0, len(pieces), self.window):
            rows = np.sort(np.concatenate([self._rows_of(*piece) for piece in pieces[i:i + self.window]]))
            data = self.reader.read(rows)
            order = rng.permutation(len(rows)) if self.shuffle else np.arange(len(rows))
            data = {k: v[order] for k, v in data.items()}
            if carry is not None:
                data = {k: np.concatenate([carry[k], v]) for k, v in data.items()}
            carry = None
            n = len(next(iter(data.values())))
            full = n // self.batch_size * self.batch_size
            for lo in range(0, full, self.batch_size):
                yield _tensors({k: v[lo:lo + self.batch_size] for k, v in data.items()})
            if full < n:
                carry = {k: v[full:] for k, v in data.items()}
        if carry is not None and not self.drop_last:
            yield _tensors(carry)

    def _rows_of(self, chunk: int, start: int, stop: int) -> np.ndarray:
        """Store rows ``start:stop`` of the split's rows of ``chunk``."""
        c = self.reader.chunk
        rows = np.arange(chunk * c, min(self.reader.num_rows, (chunk + 1) * c))
        return (rows if self._keep is None else rows[self._keep[rows]])[start:stop]


# ---------------------------------------------------------------------------- mixing
class MixedIterable(IterableDataset):
    """Batches whose rows come from several ``PoseStoreIterable``s, each row from dataset ``d``
    with probability ``weight_d / sum(weights)``.  Datasets that run out start their next epoch.
    An epoch is ``num_batches`` batches (default: as many rows as the stores hold together)
    over all DDP ranks: rank ``r`` of ``R`` makes every R-th from the r-th, from its own share of
    each dataset (the datasets' ``rank`` and ``world_size``, which must agree).
    Each batch has a ``source`` field: the index of the dataset each row came from."""

    def __init__(self, datasets: Sequence[PoseStoreIterable], weights: Sequence[float], batch_size: int,
                 seed: int = 0, num_batches: int | None = None) -> None:
        if not datasets or len(datasets) != len(weights):
            raise DataError("mix needs at least one (dataset, weight) pair")
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise DataError(f"mix weights must be >= 0 with a positive sum, got {list(weights)}")
        fields = {tuple(d.reader.fields) for d in datasets}
        if len(fields) != 1:
            raise DataError(f"mixed datasets must have the same fields, got {sorted(fields)}")
        empty = [str(d.reader.path) for d, w in zip(datasets, weights) if w > 0 and d.num_rows == 0]
        if empty:
            raise DataError(f"cannot mix empty datasets: {', '.join(empty)}")
        ranks = {(d.rank, d.world_size) for d in datasets}
        if len(ranks) != 1:
            raise DataError(f"mixed datasets must have the same rank and world_size, got {sorted(ranks)}")
        (self.rank, self.world_size), = ranks
        self.datasets, self.batch_size, self.seed = list(datasets), batch_size, seed
        self.weights = np.asarray(weights, dtype=np.float64) / sum(weights)
        total = sum(d.num_rows for d in datasets)
        self.num_batches = num_batches if num_batches is not None else math.ceil(total / batch_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        """Batches per epoch of this rank."""
        return len(range(self.rank, self.num_batches, self.world_size))

    def __iter__(self) -> Iterator[Batch]:
        worker, workers = _worker()
        stream = self.rank + worker * self.world_size
        rng = np.random.default_rng([self.seed, self.epoch, stream])
        streams = [_RowStream(d, self.epoch, worker, workers) for d in self.datasets]
        for _ in range(stream, self.num_batches, self.world_size * workers):
            counts = rng.multinomial(self.batch_size, self.weights)
            parts = [streams[d].take(int(k)) for d, k in enumerate(counts) if k]
            batch = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
            source = np.repeat(np.flatnonzero(counts), counts[counts > 0])
            order = torch.from_numpy(rng.permutation(self.batch_size))
            batch["source"] = torch.from_numpy(source)
            yield {k: v[order] for k, v in batch.items()}


class _RowStream:
    """Rows of a ``PoseStoreIterable``, epoch after epoch, taken ``k`` at a time.  In worker
    ``w`` of ``W`` it reads its part of its rank's share (``PoseStoreIterable.batches``); where
    that holds no rows, the whole of the rank's share, and where that is empty, the whole store."""

    def __init__(self, dataset: PoseStoreIterable, epoch: int, worker: int, workers: int) -> None:
        self.dataset, self.epoch = dataset, epoch
        self.stream = dataset.rank + worker * dataset.world_size
        rank = (dataset.rank, dataset.world_size)
        self.shares = [((worker, workers), rank), ((0, 1), rank), ((0, 1), (0, 1))]  # (part, rank), tried in turn
        self.batches = self._next_epoch()
        self.pending: list[Batch] = []
        self.available = 0

    def _next_epoch(self) -> Iterator[Batch]:
        self.epoch += 1
        self.rows_this_epoch = 0
        part, rank = self.shares[0]
        return self.dataset.batches(self.epoch - 1, part, self.stream, rank)

    def take(self, k: int) -> Batch:
        """The next ``k`` rows: field -> (k, ...) tensor, starting another epoch when one runs out."""
        while self.available < k:
            batch = next(self.batches, None)
            if batch is None:
                if self.rows_this_epoch == 0:
                    if len(self.shares) == 1:
                        raise DataError(f"{self.dataset.reader.path}: no rows to mix")
                    self.shares.pop(0)
                self.batches = self._next_epoch()
                continue
            rows = len(next(iter(batch.values())))
            self.pending.append(batch)
            self.available += rows
            self.rows_this_epoch += rows
        joined = {f: torch.cat([b[f] for b in self.pending]) for f in self.pending[0]}
        self.pending, self.available = [{f: v[k:] for f, v in joined.items()}], self.available - k
        return {f: v[:k] for f, v in joined.items()}


def mix(datasets_with_weights: Sequence[tuple[PoseStoreIterable | str | Path, float]], batch_size: int = 256,
        seed: int = 0, num_batches: int | None = None, **options: Any) -> MixedIterable:
    """Mix stores by weight, e.g. ``mix([("real.zarr", 1.0), ("aug.zarr", 3.0)], batch_size=256)``.

    Paths are opened as ``PoseStoreIterable(path, batch_size, seed=seed, **options)`` (``options``
    may give ``rank`` and ``world_size``); use the result with
    ``DataLoader(mixed, batch_size=None, num_workers=...)``.
    """
    datasets = [d if isinstance(d, PoseStoreIterable) else PoseStoreIterable(d, batch_size, seed=seed, **options)
                for d, _ in datasets_with_weights]
    return MixedIterable(datasets, [w for _, w in datasets_with_weights], batch_size, seed, num_batches)
