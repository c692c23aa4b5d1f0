"""Zarr stores: creation, completion marking, safe opening and safe writing.

Every posesynth store is one Zarr group whose ``posesynth`` attribute describes it
(schema version, posesynth version, kind, and ``complete``).  A store is created
with ``complete = false`` and all its attributes in one metadata write, and flipped
to complete only after its last row is written, so a reader can always tell a
finished store from an interrupted one.  Per-sample arrays have the sample axis
first and are chunked (and, in Zarr v3, sharded) along it only, and every array names its
axes (Zarr v3 ``dimension_names``, the ``_ARRAY_DIMENSIONS`` attribute in Zarr v2), so
``xarray.open_zarr`` opens each group of a store.  What each kind of store holds (array paths,
shapes, dtypes, axis names) is its layout module's: ``posesynth.stores``.

Writers go through ``writing_store``, which holds an exclusive OS lock on the store
(``<store>.lock`` beside it: ``posesynth.locking``) from before anything is touched
until the store is complete, so a second writer, ``--overwrite`` or ``--resume`` is
refused while one runs.  A store that replaces an existing one is written beside it
(``<store>.new``) and swapped in only once complete: a replacement that fails or is
killed leaves the old store as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from numcodecs import Blosc
from zarr.codecs import BloscCodec

from posesynth import __version__
from posesynth.errors import PosesynthError, os_reason
from posesynth.locking import exclusive_lock

SCHEMA_VERSION = 1
ATTR = "posesynth"


class StoreError(PosesynthError, RuntimeError):
    """A store cannot be created, opened or used as asked; the message says why."""


def _looks_like_store(path: Path) -> bool:
    return (path / "zarr.json").is_file() or (path / ".zgroup").is_file()


def _is_empty_folder(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def _remove(path: Path) -> None:
    """Delete a store (or an empty folder) posesynth is about to replace."""
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise StoreError(f"cannot remove {path}: {os_reason(exc)}") from None


def create_store(path: str | Path, kind: str, attrs: dict[str, Any], *, overwrite: bool = False,
                 zarr_format: int = 3, meta: dict[str, Any] | None = None) -> zarr.Group:
    """Create an empty, incomplete store at ``path`` with ``attrs`` (and ``meta`` in its
    ``posesynth`` attribute), written with the group's metadata in one file write.

    Refuses to touch an existing path unless ``overwrite`` is set, and even then
    only replaces something that is itself a Zarr store.  (Commands write through
    ``writing_store``, which replaces a store only once the new one is complete.)
    """
    path = Path(path)
    if path.exists() and not _is_empty_folder(path):
        if not overwrite:
            raise StoreError(f"{path} already exists; pass --overwrite to replace it")
        if not _looks_like_store(path):
            raise StoreError(f"{path} exists and is not a Zarr store; refusing to overwrite it")
        _remove(path)
    header = {"schema_version": SCHEMA_VERSION, "version": __version__, "kind": kind, "complete": False,
              **(meta or {})}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return zarr.open_group(str(path), mode="w", zarr_format=zarr_format, attributes={ATTR: header, **attrs})
    except OSError as exc:
        raise StoreError(f"cannot create a store at {path}: {os_reason(exc)}") from None


# ---------------------------------------------------------------------------- writing safely
@dataclass(frozen=True)
class StoreTarget:
    """Where a writer holding the lock of ``final`` writes: ``path`` is ``final`` itself, or its
    staging path beside it when an existing store is being replaced; ``resume``: finish the
    (incomplete) store already at ``path`` rather than create one."""

    final: Path
    path: Path
    resume: bool = False

    @property
    def replacing(self) -> bool:
        return self.path != self.final


def staging_path(path: Path) -> Path:
    """Where a store that replaces ``path`` is written until it is complete."""
    return path.with_name(path.name + ".new")


def _old_path(path: Path) -> Path:
    """Where the replaced store waits, during a swap, to be deleted."""
    return path.with_name(path.name + ".old")


def lock_path(path: Path) -> Path:
    """The lock file of the store at ``path``."""
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def writing_store(path: str | Path, *, overwrite: bool = False, resume: bool = False,
                  can_resume: bool = True) -> Iterator[StoreTarget]:
    """Hold the exclusive write lock of the store at ``path`` and say where to write it.

    Yields a ``StoreTarget``: a new store goes straight to ``path``; one that replaces an
    existing store (``overwrite``) goes to ``<path>.new`` and, when the block exits normally
    and the new store is complete, is swapped in for the old one; ``resume`` finishes the
    incomplete store at ``<path>.new`` (an interrupted replacement) or at ``path``.  An
    existing store without ``overwrite`` or ``resume`` is refused (``can_resume``: whether
    the command has a ``--resume`` to suggest), as is anything at ``path`` that is not a store;
    an empty folder counts as nothing.  Raises StoreError (or LockError: another process
    holds the lock) before anything is touched.
    """
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create a store at {final}: {os_reason(exc)}") from None
    with exclusive_lock(lock_path(final), str(final)):
        _finish_interrupted_swap(final)
        target = _plan(final, overwrite, resume, can_resume)
        yield target
        if target.replacing:
            _swap_in(target.path, final)


def _plan(final: Path, overwrite: bool, resume: bool, can_resume: bool) -> StoreTarget:
    """Decide where to write (see ``writing_store``); clears only what the new store replaces."""
    staging = staging_path(final)
    if resume and _looks_like_store(staging):
        return StoreTarget(final, staging, resume=True)
    if resume and _looks_like_store(final):
        return StoreTarget(final, final, resume=True)
    present = final.exists() and not _is_empty_folder(final)
    if present and not _looks_like_store(final):
        raise StoreError(f"{final} exists and is not a Zarr store; refusing to overwrite it")
    if present and not overwrite:
        raise StoreError(_exists_message(final, can_resume))
    _clear_staging(staging)
    if present:
        return StoreTarget(final, staging)
    _remove(final)  # nothing, or an empty folder
    return StoreTarget(final, final)


def _exists_message(path: Path, can_resume: bool) -> str:
    if _store_complete(path) is not False:  # complete, or unreadable: nothing to resume
        return f"{path} already exists; pass --overwrite to replace it"
    finish = "--resume to finish it (with the same arguments) or " if can_resume else ""
    return f"{path} holds an incomplete store (an interrupted or failed run); pass {finish}--overwrite to replace it"


def _clear_staging(staging: Path) -> None:
    """Remove what an interrupted replacement left at ``staging`` (only a store or an empty folder)."""
    if not staging.exists():
        return
    if not (_looks_like_store(staging) or _is_empty_folder(staging)):
        raise StoreError(f"{staging} exists and is not a store posesynth left there; move it away")
    _remove(staging)


def _store_complete(path: Path) -> bool | None:
    """Whether the store at ``path`` is marked complete; None when it cannot be read as one."""
    try:
        return bool(open_store(path, allow_incomplete=True).attrs[ATTR].get("complete"))
    except StoreError:
        return None


def _swap_in(new: Path, final: Path) -> None:
    """Replace the store at ``final`` with the complete one at ``new``: two renames, then the
    old store is deleted; ``_finish_interrupted_swap`` completes a swap killed half-way."""
    if not _store_complete(new):
        return  # the writer stopped before the end: the old store stays
    old = _old_path(final)
    try:
        if final.exists():
            os.rename(final, old)
        os.rename(new, final)
    except OSError as exc:
        raise StoreError(f"cannot move the new store {new} into place at {final}: {os_reason(exc)}") from None
    _remove(old)


def _finish_interrupted_swap(final: Path) -> None:
    """Finish a swap that was killed between its renames or before deleting the old store."""
    old = _old_path(final)
    if not old.exists():
        return
    if not final.exists():
        source = staging_path(final) if _store_complete(staging_path(final)) else old
        try:
            os.rename(source, final)
        except OSError as exc:
            raise StoreError(f"cannot finish replacing {final} (from {source}): {os_reason(exc)}") from None
    if old.exists():
        _remove(old)


def _compression(zarr_format: int) -> dict[str, Any]:
    """Blosc lz4 with bit-shuffle, in the codec type each Zarr format takes."""
    if zarr_format == 3:
        return {"compressors": BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle")}  # zarr 3.4 deprecates the enum
    return {"compressor": Blosc(cname="lz4", clevel=5, shuffle=Blosc.BITSHUFFLE)}


def dimension_names(name: str, ndim: int) -> tuple[str, ...]:
    """Axis names for an array ``name`` with ``ndim`` axes whose store layout names none:
    ``sample`` then ``<last part>_1``, ``<last part>_2``, ... (the layouts of posesynth's own
    stores name their axes: ``posesynth.stores``)."""
    leaf = name.rsplit("/", 1)[-1]
    return ("sample",) + tuple(f"{leaf}_{axis}" for axis in range(1, ndim))


def create_array(group: zarr.Group, name: str, shape: tuple[int, ...], dtype: Any, rows_per_chunk: int = 4096,
                 rows_per_shard: int | None = None, attrs: dict[str, Any] | None = None,
                 dims: tuple[str, ...] | None = None) -> zarr.Array:
    """An empty array ``name`` of ``shape`` (N, ...), chunked by ``rows_per_chunk`` rows along
    axis 0 and, in Zarr v3, sharded by ``rows_per_shard`` (a multiple of it), its axes named
    ``dims`` (the store layout's, ``posesynth.stores``; None: ``dimension_names``); fill it by
    writing row ranges (``arr[a:b] = ...``), whole shards at a time."""
    chunks = (rows_per_chunk,) + tuple(shape[1:])
    zarr_format = group.metadata.zarr_format
    kwargs = _compression(zarr_format)
    if rows_per_shard and zarr_format == 3:
        if rows_per_shard % rows_per_chunk:
            raise ValueError(f"rows_per_shard {rows_per_shard} is not a multiple of rows_per_chunk {rows_per_chunk}")
        kwargs["shards"] = (rows_per_shard,) + tuple(shape[1:])
    dims = dimension_names(name, len(shape)) if dims is None else tuple(dims)
    attributes = dict(attrs or {})
    if zarr_format == 3:
        kwargs["dimension_names"] = dims
    else:  # Zarr v2 has no dimension names: xarray reads this attribute instead
        attributes["_ARRAY_DIMENSIONS"] = list(dims)
    # Every chunk is written, even all zeros: posesynth's arrays are dense, and checking each
    # chunk for emptiness costs a pass over the data.  No v2 fill value, which xarray would read
    # as "missing" and turn every stored 0 into NaN (v3 fill values are not masks).
    return group.create_array(name, shape=tuple(shape), dtype=dtype, chunks=chunks,
                              fill_value=0 if zarr_format == 3 else None, attributes=attributes,
                              config={"write_empty_chunks": True}, **kwargs)


def add_array(group: zarr.Group, name: str, data: np.ndarray, rows_per_chunk: int = 4096,
              rows_per_shard: int | None = None, attrs: dict[str, Any] | None = None,
              dims: tuple[str, ...] | None = None) -> zarr.Array:
    """Write ``data`` (N, ...) as array ``name``, chunked (and sharded) along axis 0, its axes named
    ``dims`` (as ``create_array``)."""
    data = np.ascontiguousarray(data)
    n = max(1, data.shape[0])
    chunk = min(rows_per_chunk, n)
    shard = min(rows_per_shard, n) // chunk * chunk if rows_per_shard else None
    arr = create_array(group, name, data.shape, data.dtype, chunk, shard, attrs, dims)
    arr[...] = data
    return arr


def mark_complete(group: zarr.Group, **extra: Any) -> None:
    """Flip the store's ``complete`` flag; call after the last write."""
    meta = dict(group.attrs[ATTR])
    meta.update(extra, complete=True)
    group.attrs[ATTR] = meta


# What Zarr raises for a metadata file it cannot parse (bad bytes, bad JSON, missing keys; for
# some Zarr v2 files it even asserts), and for a chunk it cannot decode (a checksum, a blosc stream).
METADATA_ERRORS = (ValueError, TypeError, KeyError, AttributeError, AssertionError)
CHUNK_ERRORS = (ValueError, RuntimeError)
METADATA_FILES = ("zarr.json", ".zarray", ".zgroup")  # a folder holding one is a node of the store


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its class name when it has none."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def open_group(path: str | Path, mode: str = "r") -> zarr.Group:
    """``zarr.open_group``, with a StoreError naming the store when its metadata cannot be read."""
    try:
        return zarr.open_group(str(path), mode=mode)
    except OSError as exc:
        raise StoreError(f"{path}: cannot open the store: {os_reason(exc)}") from None
    except METADATA_ERRORS as exc:
        raise StoreError(f"{path}: not a readable Zarr store: its metadata is corrupt ({first_line(exc)})") from None


def store_folder(node: zarr.Group | zarr.Array) -> Path:
    """The folder of the store that holds ``node``, as it was given when the store was opened."""
    return Path(node.store.root)


def damaged_store_error(path: str | Path, what: str) -> StoreError:
    """The error for a part of a store that is not as posesynth writes it: ``<path>: damaged
    store: <what>``, ``what`` naming the array or attribute and what is wrong with it."""
    return StoreError(f"{path}: damaged store: {what}")


def store_arrays(group: zarr.Group) -> dict[str, zarr.Array]:
    """Every array of the store ``group`` by its path in it (``keypoints/h36m17/pixels``), sorted;
    the metadata of each node is read, one at a time, so one that cannot be read is a "damaged
    store" StoreError naming it."""
    path, arrays, groups = store_folder(group), {}, [""]
    while groups:
        prefix = groups.pop()
        for folder in sorted((path / prefix).iterdir()):
            if not any((folder / name).is_file() for name in METADATA_FILES):
                continue  # a chunk folder, or no part of the store
            name = prefix + folder.name
            try:
                node = group[name]
            except METADATA_ERRORS as exc:
                raise damaged_store_error(path, f"the metadata of {name} cannot be read ({first_line(exc)})") from None
            if isinstance(node, zarr.Array):
                arrays[name] = node
            else:
                groups.append(name + "/")
    return dict(sorted(arrays.items()))


def check_attributes(group: zarr.Group, types: dict[str, type | tuple[type, type]]) -> None:
    """A "damaged store" StoreError naming the first attribute of ``group`` that is not of its
    type in ``types`` (name -> type, or (type, type of each entry) for a list or dict);
    attributes ``types`` does not list, or the store does not have, are not checked."""
    for key, kind in types.items():
        kind, entry = kind if isinstance(kind, tuple) else (kind, None)
        value = group.attrs.get(key, kind())  # an attribute the store lacks is not checked
        if not isinstance(value, kind):
            raise damaged_store_error(store_folder(group), f"attribute {key!r} is {_shown(value)}, "
                                                           f"not {_TYPE_NAMES[kind]}")
        entries = (value.items() if isinstance(value, dict) else enumerate(value)) if entry else ()
        for name, item in entries:
            if not isinstance(item, entry):
                raise damaged_store_error(store_folder(group), f"attribute {key!r}: its entry {name!r} is "
                                                               f"{_shown(item)}, not {_TYPE_NAMES[entry]}")


_TYPE_NAMES = {dict: "a dict", list: "a list", str: "a string", int: "an int"}


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def incomplete_store_error(path: str | Path, what: str, missing: list[str]) -> StoreError:
    """The error for a store stopped while it was being created: ``what`` ("attributes",
    "arrays") are missing."""
    return StoreError(f"{path}: incomplete store, {what} missing ({', '.join(missing)}): the run that "
                      "created it was stopped before it had set the store up; write it again with --overwrite")


def open_store(path: str | Path, *, kind: str | None = None, allow_incomplete: bool = False) -> zarr.Group:
    """Open a store for reading, refusing incomplete or foreign ones with a clear message."""
    path = Path(path)
    if not _looks_like_store(path):
        raise StoreError(f"{path}: not a Zarr store (no zarr.json or .zgroup)")
    group = open_group(path)
    meta = group.attrs.get(ATTR)
    if meta is None and not dict(group.attrs) and not list(group.keys()):
        raise incomplete_store_error(path, "attributes", [ATTR])
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
