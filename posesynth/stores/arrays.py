"""One per-row array of a store: its spec (``ArraySpec``: path, shape in symbols, dtype, axis
names) and reading rows of it (``read_array``, ``read_rows``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from posesynth.store import CHUNK_ERRORS, damaged_store_error, first_line, store_folder

SAMPLE_AXIS = "sample"
Shapes = dict[str, tuple[tuple[int, ...], str]]  # array path -> (shape after the sample axis, dtype)


@dataclass(frozen=True)
class ArraySpec:
    """One per-row array of a store.

    ``path`` is the array's name in the group (a template with ``<set>`` for each keypoint set's
    arrays); ``shape`` is its shape after the sample axis, numbers or size symbols (``"V"``
    views, ``"J"`` keypoints of the set, ``"K"`` betas); ``dims`` names every axis, the sample
    axis first (Zarr v3 ``dimension_names``).
    """

    path: str
    shape: tuple[int | str, ...]
    dtype: str
    dims: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.dims) != len(self.shape) + 1 or self.dims[0] != SAMPLE_AXIS:
            raise ValueError(f"{self.path}: dims {self.dims} do not name the sample axis and {self.shape}")

    def tail(self, sizes: Mapping[str, int]) -> tuple[int, ...]:
        """The shape after the sample axis with each symbol replaced by its size in ``sizes``."""
        return tuple(sizes[s] if isinstance(s, str) else s for s in self.shape)

    def shown(self) -> str:
        """The shape and dtype as docs/sample_store.md writes them: ``(N, V, J, 2) float32``."""
        axes = ("N",) + tuple(str(s) for s in self.shape)
        return f"({', '.join(axes)}{',' if len(axes) == 1 else ''}) {self.dtype}"


def read_array(array: Any, rows: Any = slice(None)) -> np.ndarray:
    """``array[rows]`` of a Zarr array; a chunk that cannot be decoded (a damaged file) is a
    "damaged store" StoreError naming the store and the array."""
    try:
        return np.asarray(array[rows])
    except CHUNK_ERRORS as exc:
        reason = first_line(exc).split(". ")[0]  # not the checksums' raw bytes that follow
        raise damaged_store_error(store_folder(array),
                                  f"array {array.path}: a chunk cannot be read ({reason})") from None


def read_rows(array: Any, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` (M,) of a Zarr array (N, ...), any order, repeats allowed -> (M, ...),
    reading each needed chunk once: one slice when the rows are dense, else the unique rows."""
    lo, hi = int(rows.min()), int(rows.max()) + 1
    if hi - lo <= 4 * len(rows) + 64:
        return read_array(array, slice(lo, hi))[rows - lo]
    unique, inverse = np.unique(rows, return_inverse=True)
    return read_array(array, unique)[inverse]
