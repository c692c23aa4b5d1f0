"""Writing one whole shard of a Zarr v3 array in one pass over its rows.

Zarr's own write path (``arr[a:b] = rows``) copies every inner chunk into a freshly allocated
fill-value array, compares it with the fill value, compresses it, joins the compressed chunks
and writes the joined bytes: about six passes over memory, three times the CPU of compressing
alone (1M default samples, 2.8 GB: ~5 CPU-s against ~1.7).  On a CPU the sampler already keeps
every core busy, so that overhead is what stops writing from hiding behind generation.

``write_rows`` writes a row range that is exactly one shard of a sharded array with the codecs
posesynth creates (``store.create_array``: bytes, Blosc; index bytes + crc32c at the end) by
compressing each chunk straight from the caller's rows and writing the shard file (chunks, then
the index) atomically, as Zarr's local store does.  The file is byte for byte what Zarr writes
(tests compare them), except that Zarr leaves out chunks that equal the fill value and this
writes every chunk, as ``write_empty_chunks=True`` asks.  That is checked for the Zarr releases
in ``CHECKED_ZARR_VERSIONS`` only: with any other Zarr installed, every write goes through Zarr.
Anything else (Zarr v2 arrays, unsharded or foreign layouts, other stores, a range that is not
one shard) goes through Zarr too.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import google_crc32c
import numpy as np
import zarr
from numcodecs import Blosc
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, ShardingCodec
from zarr.storage import LocalStore

EMPTY = np.iinfo(np.uint64).max  # index entry of a chunk that is not in the shard
# The Zarr releases whose shard files write_rows was checked to reproduce byte for byte
# (tests/test_shard_file.py): the newest on Python 3.11 and on 3.12. The codecs' attributes
# and the file layout may differ in others.
CHECKED_ZARR_VERSIONS = frozenset({"3.1.6", "3.4.2"})
BLOSC_SHUFFLE = {"noshuffle": Blosc.NOSHUFFLE, "shuffle": Blosc.SHUFFLE, "bitshuffle": Blosc.BITSHUFFLE}


@dataclass(frozen=True)
class ShardLayout:
    """What writing a shard file of one array needs: where shards go and how chunks encode."""

    root: Path  # the array's folder
    shard_rows: int
    chunk_rows: int
    compressor: Blosc

    @classmethod
    def of(cls, arr: zarr.Array) -> ShardLayout | None:
        """The layout of ``arr``, or None when it is not one this module writes (or the installed
        Zarr is not one it was checked against)."""
        if not zarr_checked() or arr.metadata.zarr_format != 3 or not isinstance(arr.store_path.store, LocalStore):
            return None
        codecs = arr.metadata.codecs
        if len(codecs) != 1 or not isinstance(codecs[0], ShardingCodec):
            return None
        sharding = codecs[0]
        inner, index = sharding.codecs, sharding.index_codecs
        row_sharded = all(s == c for s, c in zip(arr.metadata.chunk_grid.chunk_shape[1:], arr.shape[1:]))
        if not (row_sharded and _name(sharding.index_location) == "end"
                and len(inner) == 2 and _little_endian(inner[0]) and isinstance(inner[1], BloscCodec)
                and len(index) == 2 and _little_endian(index[0]) and isinstance(index[1], Crc32cCodec)
                and tuple(sharding.chunk_shape[1:]) == tuple(arr.shape[1:])):
            return None
        blosc = inner[1]
        compressor = Blosc(cname=_name(blosc.cname), clevel=blosc.clevel, shuffle=BLOSC_SHUFFLE[_name(blosc.shuffle)],
                           blocksize=blosc.blocksize, typesize=blosc.typesize)
        return cls(Path(arr.store_path.store.root) / arr.path, arr.metadata.chunk_grid.chunk_shape[0],
                   sharding.chunk_shape[0], compressor)


def zarr_checked() -> bool:
    """Whether the installed Zarr is one whose shard files ``write_rows`` reproduces (else it
    lets Zarr write every row)."""
    return zarr.__version__ in CHECKED_ZARR_VERSIONS


def _name(value: Enum | str) -> str:
    """A codec setting's name: Zarr 3.1 holds them as enums (``BloscCname.lz4``), 3.4 as strings."""
    return value.value if isinstance(value, Enum) else value


def _little_endian(codec: object) -> bool:
    return isinstance(codec, BytesCodec) and (codec.endian is None or _name(codec.endian) == "little")


def write_rows(arr: zarr.Array, start: int, rows: np.ndarray) -> None:
    """``arr[start:start + len(rows)] = rows``, in one pass when the range is one whole shard
    (the last shard may be short) of an array this module can write (see the module)."""
    layout = ShardLayout.of(arr)
    stop = start + len(rows)
    whole_shard = layout is not None and start % layout.shard_rows == 0 and (
        stop - start == layout.shard_rows or (stop == arr.shape[0] and stop - start < layout.shard_rows))
    if not whole_shard or rows.dtype != arr.dtype:
        arr[start:stop] = rows
        return
    key = arr.metadata.encode_chunk_key((start // layout.shard_rows,) + (0,) * (arr.ndim - 1))
    _write_atomically(layout.root / key, encode_shard(layout, np.ascontiguousarray(rows)))


def encode_shard(layout: ShardLayout, rows: np.ndarray) -> list[bytes]:
    """The pieces of the shard file holding ``rows`` (at most ``shard_rows``, C-contiguous): each
    chunk compressed (the last one padded with the fill value 0 to a whole chunk, as Zarr stores
    edge chunks), then the index ((chunks, 2) little-endian uint64 offset and length; absent
    chunks ``EMPTY``) and its crc32c."""
    chunks_per_shard = layout.shard_rows // layout.chunk_rows
    index = np.full((chunks_per_shard, 2), EMPTY, dtype="<u8")
    pieces: list[bytes] = []
    offset = 0
    for i, first in enumerate(range(0, len(rows), layout.chunk_rows)):
        chunk = rows[first:first + layout.chunk_rows]
        if len(chunk) < layout.chunk_rows:
            chunk = np.concatenate([chunk, np.zeros((layout.chunk_rows - len(chunk),) + chunk.shape[1:], chunk.dtype)])
        encoded = layout.compressor.encode(chunk)
        pieces.append(encoded)
        index[i] = offset, len(encoded)
        offset += len(encoded)
    index_bytes = index.tobytes()
    return pieces + [index_bytes, google_crc32c.value(index_bytes).to_bytes(4, "little")]


def _write_atomically(path: Path, pieces: list[bytes]) -> None:
    """Write ``pieces`` to ``path`` through a temporary file renamed over it (readers, and a run
    killed midway, never see half a shard)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.partial")
    try:
        with open(tmp, "wb") as fh:
            fh.writelines(pieces)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
