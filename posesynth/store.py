"""Zarr stores: creation, completion marking and safe opening.

Every posesynth store is one Zarr group whose ``posesynth`` attribute describes it
(schema version, posesynth version, kind, and ``complete``).  A store is created
with ``complete = false`` and flipped to true only after its last row is written,
so a reader can always tell a finished store from an interrupted one.  Per-sample
arrays have the sample axis first and are chunked (and, in Zarr v3, sharded)
along it only.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from numcodecs import Blosc
from zarr.codecs import BloscCodec, BloscShuffle

from posesynth import __version__

SCHEMA_VERSION = 1
ATTR = "posesynth"


class StoreError(RuntimeError):
    """A store cannot be created, opened or used as asked; the message says why."""


def _looks_like_store(path: Path) -> bool:
    return (path / "zarr.json").is_file() or (path / ".zgroup").is_file()


def create_store(path: str | Path, kind: str, attrs: dict[str, Any], *, overwrite: bool = False,
                 zarr_format: int = 3) -> zarr.Group:
    """Create an empty, incomplete store at ``path``.

    Refuses to touch an existing path unless ``overwrite`` is set, and even then
    only replaces something that is itself a Zarr store.
    """
    path = Path(path)
    if path.exists():
        if not overwrite:
            raise StoreError(f"{path} already exists; pass --overwrite to replace it")
        if not _looks_like_store(path):
            raise StoreError(f"{path} exists and is not a Zarr store; refusing to overwrite it")
        shutil.rmtree(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        group = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    except OSError as exc:
        raise StoreError(f"cannot create a store at {path}: {exc.strerror or exc}") from None
    meta = {"schema_version": SCHEMA_VERSION, "version": __version__, "kind": kind, "complete": False}
    group.attrs.update({ATTR: meta, **attrs})
    return group


def _compression(zarr_format: int) -> dict[str, Any]:
    """Blosc lz4 with bit-shuffle, in the codec type each Zarr format takes."""
    if zarr_format == 3:
        return {"compressors": BloscCodec(cname="lz4", clevel=5, shuffle=BloscShuffle.bitshuffle)}
    return {"compressor": Blosc(cname="lz4", clevel=5, shuffle=Blosc.BITSHUFFLE)}


def create_array(group: zarr.Group, name: str, shape: tuple[int, ...], dtype: Any, rows_per_chunk: int = 4096,
                 rows_per_shard: int | None = None, attrs: dict[str, Any] | None = None) -> zarr.Array:
    """An empty array ``name`` of ``shape`` (N, ...), chunked by ``rows_per_chunk`` rows along
    axis 0 and, in Zarr v3, sharded by ``rows_per_shard`` (a multiple of it); fill it by
    writing row ranges (``arr[a:b] = ...``), whole shards at a time."""
    chunks = (rows_per_chunk,) + tuple(shape[1:])
    kwargs = _compression(group.metadata.zarr_format)
    if rows_per_shard and group.metadata.zarr_format == 3:
        if rows_per_shard % rows_per_chunk:
            raise ValueError(f"rows_per_shard {rows_per_shard} is not a multiple of rows_per_chunk {rows_per_chunk}")
        kwargs["shards"] = (rows_per_shard,) + tuple(shape[1:])
    # Every chunk is written, even all zeros: posesynth's arrays are dense, and checking each
    # chunk for emptiness costs a pass over the data.
    return group.create_array(name, shape=tuple(shape), dtype=dtype, chunks=chunks, fill_value=0,
                              attributes=attrs or {}, config={"write_empty_chunks": True}, **kwargs)


def add_array(group: zarr.Group, name: str, data: np.ndarray, rows_per_chunk: int = 4096,
              rows_per_shard: int | None = None, attrs: dict[str, Any] | None = None) -> zarr.Array:
    """Write ``data`` (N, ...) as array ``name``, chunked (and sharded) along axis 0."""
    data = np.ascontiguousarray(data)
    n = max(1, data.shape[0])
    chunk = min(rows_per_chunk, n)
    shard = min(rows_per_shard, n) // chunk * chunk if rows_per_shard else None
    arr = create_array(group, name, data.shape, data.dtype, chunk, shard, attrs)
    arr[...] = data
    return arr


def mark_complete(group: zarr.Group, **extra: Any) -> None:
    """Flip the store's ``complete`` flag; call after the last write."""
    meta = dict(group.attrs[ATTR])
    meta.update(extra, complete=True)
    group.attrs[ATTR] = meta


def open_store(path: str | Path, *, kind: str | None = None, allow_incomplete: bool = False) -> zarr.Group:
    """Open a store for reading, refusing incomplete or foreign ones with a clear message."""
    path = Path(path)
    if not _looks_like_store(path):
        raise StoreError(f"{path}: not a Zarr store (no zarr.json or .zgroup)")
    group = zarr.open_group(str(path), mode="r")
    meta = group.attrs.get(ATTR)
    if not isinstance(meta, dict) or "schema_version" not in meta:
        raise StoreError(f"{path}: a Zarr store, but not one written by posesynth")
    if meta["schema_version"] > SCHEMA_VERSION:
        raise StoreError(f"{path}: schema version {meta['schema_version']} is newer than this "
                         f"posesynth ({__version__}) understands ({SCHEMA_VERSION}); upgrade posesynth")
    if kind is not None and meta.get("kind") != kind:
        raise StoreError(f"{path}: expected a {kind} store, found a {meta.get('kind')} store")
    if not meta.get("complete") and not allow_incomplete:
        raise StoreError(f"{path}: the store is incomplete (the run that wrote it was interrupted "
                         "or failed); finish it or write it again")
    return group


def split_rows(group: zarr.Group, split: str, where: str | Path) -> np.ndarray:
    """Row indices (sorted) of a training store's ``split`` (one of its ``splits`` attribute,
    e.g. "train" or "val"; "all": every row).  An unknown or empty split is a StoreError
    naming ``where`` (the store's path)."""
    if split == "all":
        return np.arange(group["split"].shape[0])
    splits = group.attrs["splits"]
    if split not in splits:
        raise StoreError(f"{where}: split must be 'all' or one of {splits}, got {split!r}")
    rows = np.flatnonzero(group["split"][:] == splits.index(split))
    if len(rows) == 0:
        raise StoreError(f"{where}: the {split!r} split is empty")
    return rows


HELD_OUT = ("unseen actor", "unseen class", "unseen file")


def held_out_categories(group: zarr.Group) -> list[str]:
    """Per file index of a training store: why a validation file is held out (``HELD_OUT``:
    its actor is a validation subject, else its class a validation class, else the file was
    drawn on its own), from the store's ``split_rule``; meaningful for validation files only."""
    labels, rule = group.attrs["labels"], group.attrs["split_rule"]
    file_idx, first = np.unique(group["file"][:], return_index=True)
    subject = np.asarray(labels["subject"])[group["subject"][:][first]]
    content = np.asarray(labels["content"])[group["content"][:][first]]
    category = np.where(np.isin(subject, rule["val_subjects"]), HELD_OUT[0],
                        np.where(np.isin(content, rule["val_contents"]), HELD_OUT[1], HELD_OUT[2]))
    names = [""] * len(labels["file"])
    for i, c in zip(file_idx, category):
        names[i] = str(c)
    return names
