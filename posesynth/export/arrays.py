"""Export formats that hold every array of a store: ``npz`` and ``h5``.

- ``npz``: every array under its store name (``keypoints/h36m17/pixels``, ...), plus ``attrs``,
  the store's attributes as a JSON string.  Plain arrays only: ``np.load(path)`` reads it with
  ``allow_pickle=False``.  Written one chunk at a time (uncompressed ZIP), in constant memory.
- ``h5``: the same arrays as HDF5 datasets (groups from the ``/`` in the names), chunked along
  the sample axis as in the store and LZF-compressed, and every attribute as a JSON string in
  the root's attributes.  Written one chunk at a time.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import zarr

from posesynth.export import ExportOptions
from posesynth.outputs import atomic_output


def _arrays(group: zarr.Group) -> dict[str, zarr.Array]:
    return {name: a for name, a in sorted(group.members(max_depth=None)) if isinstance(a, zarr.Array)}


def _row_blocks(arr: zarr.Array) -> list[slice]:
    """Slices of whole chunks along the sample axis."""
    step = arr.chunks[0]
    return [slice(lo, min(arr.shape[0], lo + step)) for lo in range(0, arr.shape[0], step)]


def _attrs_json(group: zarr.Group) -> str:
    return json.dumps(dict(group.attrs))


def export_npz(group: zarr.Group, out: Path, options: ExportOptions) -> list[Path]:
    """Every array of ``group`` and its attributes (JSON) in one uncompressed ``.npz``."""
    with atomic_output(out, options.overwrite) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in _arrays(group).items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
                header = {"descr": np.lib.format.dtype_to_descr(arr.dtype), "fortran_order": False,
                          "shape": tuple(arr.shape)}
                np.lib.format.write_array_header_2_0(fh, header)
                for rows in _row_blocks(arr):
                    fh.write(np.ascontiguousarray(arr[rows]).tobytes())
        with zf.open("attrs.npy", "w") as fh:
            np.lib.format.write_array(fh, np.array(_attrs_json(group)), allow_pickle=False)
    return [out]


def export_h5(group: zarr.Group, out: Path, options: ExportOptions) -> list[Path]:
    """Every array of ``group`` as an HDF5 dataset, attributes as JSON strings on the root."""
    import h5py

    with atomic_output(out, options.overwrite) as tmp, h5py.File(tmp, "w") as f:
        for key, value in group.attrs.items():
            f.attrs[key] = json.dumps(value)
        for name, arr in _arrays(group).items():
            chunks = (max(1, min(arr.chunks[0], arr.shape[0])),) + tuple(arr.shape[1:]) if arr.shape[0] else None
            ds = f.create_dataset(name, shape=arr.shape, dtype=arr.dtype, chunks=chunks,
                                  compression="lzf" if chunks else None)
            for rows in _row_blocks(arr):
                ds[rows] = arr[rows]
    return [out]


