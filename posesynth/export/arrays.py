"""Export formats that hold every array of a store: ``npz`` and ``h5``; and the pieces every
format streams a store with.

- ``npz``: every array under its store name (``keypoints/h36m17/pixels``, ...), plus ``attrs``,
  the store's attributes as a JSON string.  Plain arrays only: ``np.load(path)`` reads it with
  ``allow_pickle=False``.  Written one chunk at a time (uncompressed ZIP), in constant memory.
- ``h5``: the same arrays as HDF5 datasets (groups from the ``/`` in the names), chunked along
  the sample axis as in the store and gzip-compressed (level 4: HDF5's standard deflate filter,
  which every HDF5 reader has built in, unlike LZF), and every attribute as a JSON string in
  the root's attributes.  Written one chunk at a time.

Both show a progress bar over the chunks they copy when stderr is a terminal, as every
posesynth command does.
"""

from __future__ import annotations

import json
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np
import zarr
from tqdm import tqdm

from posesynth.export import ExportOptions
from posesynth.outputs import atomic_output
from posesynth.store import store_arrays
from posesynth.stores.arrays import read_array

GZIP_LEVEL = 4
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # every member's timestamp: the same store gives the same bytes


def row_blocks(arr: zarr.Array) -> list[slice]:
    """Slices of whole chunks along the sample axis."""
    step = arr.chunks[0]
    return [slice(lo, min(arr.shape[0], lo + step)) for lo in range(0, arr.shape[0], step)]


def progress(total: int, desc: str) -> tqdm:
    """A progress bar of ``total`` chunks, shown only when stderr is a terminal."""
    return tqdm(total=total, desc=desc, unit="chunk", disable=not sys.stderr.isatty())


def npy_member(zf: zipfile.ZipFile, name: str) -> IO[bytes]:
    """The member ``<name>.npy`` of ``zf`` (what ``np.load`` reads as ``name``), open for writing."""
    info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_TIME)
    info.compress_type = zf.compression
    return zf.open(info, "w", force_zip64=True)


def write_npy(zf: zipfile.ZipFile, name: str, dtype: Any, shape: tuple[int, ...], blocks: Iterable[np.ndarray]) -> None:
    """The member ``<name>.npy`` of ``zf``: an array of ``dtype`` and ``shape`` written from
    ``blocks``, consecutive rows of it, as they come."""
    with npy_member(zf, name) as fh:
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
                  "shape": tuple(shape)}
        np.lib.format.write_array_header_2_0(fh, header)
        for block in blocks:
            fh.write(np.ascontiguousarray(block, dtype=dtype).tobytes())


def _attrs_json(group: zarr.Group) -> str:
    return json.dumps(dict(group.attrs))


def _chunks_of(arr: zarr.Array, bar: tqdm) -> Iterable[np.ndarray]:
    for rows in row_blocks(arr):
        yield read_array(arr, rows)
        bar.update()


def export_npz(group: zarr.Group, out: Path, options: ExportOptions) -> list[Path]:
    """Every array of ``group`` and its attributes (JSON) in one uncompressed ``.npz``."""
    arrays = store_arrays(group)
    with (atomic_output(out, options.overwrite) as tmp,
          zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf,
          progress(sum(len(row_blocks(a)) for a in arrays.values()), "npz") as bar):
        for name, arr in arrays.items():
            write_npy(zf, name, arr.dtype, arr.shape, _chunks_of(arr, bar))
        with npy_member(zf, "attrs") as fh:
            np.lib.format.write_array(fh, np.array(_attrs_json(group)), allow_pickle=False)
    return [out]


def export_h5(group: zarr.Group, out: Path, options: ExportOptions) -> list[Path]:
    """Every array of ``group`` as a gzip-compressed HDF5 dataset, attributes as JSON strings on the root."""
    import h5py

    arrays = store_arrays(group)
    with (atomic_output(out, options.overwrite) as tmp, h5py.File(tmp, "w") as f,
          progress(sum(len(row_blocks(a)) for a in arrays.values()), "h5") as bar):
        for key, value in group.attrs.items():
            f.attrs[key] = json.dumps(value)
        for name, arr in arrays.items():
            chunks = (max(1, min(arr.chunks[0], arr.shape[0])),) + tuple(arr.shape[1:]) if arr.shape[0] else None
            gzip = {"compression": "gzip", "compression_opts": GZIP_LEVEL} if chunks else {}
            ds = f.create_dataset(name, shape=arr.shape, dtype=arr.dtype, chunks=chunks, **gzip)
            for rows in row_blocks(arr):
                ds[rows] = read_array(arr, rows)
                bar.update()
    return [out]
