"""``posesynth export``: a store's contents in other trainers' formats, one module per format.

- ``npz``, ``h5`` (``posesynth.export.arrays``): every array of any store under its store name,
  and its attributes.
- ``videopose3d`` (``posesynth.export.videopose3d``, sample stores): VideoPose3D's two files.

Each format is a function ``(group, out, options) -> list[Path]`` in ``FORMATS``; every file is
written under a temporary name and renamed at the end (``posesynth.outputs``), so an export never
leaves a truncated file, and an existing file is replaced only with ``overwrite``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from posesynth.errors import PosesynthError

if TYPE_CHECKING:  # the CLI reads FORMATS at start-up: keep this module free of heavy imports
    import zarr


class ExportError(PosesynthError, ValueError):
    """An export that cannot be made as asked; the message says why."""


@dataclass(frozen=True)
class ExportOptions:
    """What a format may use beyond the store: ``keypoint_set`` and ``noisy`` choose the 2D/3D
    arrays, ``name`` the dataset name in file names, ``overwrite`` allows replacing files."""

    name: str
    keypoint_set: str = "h36m17"
    noisy: bool = False
    overwrite: bool = False


Exporter = Callable[["zarr.Group", Path, ExportOptions], list[Path]]


# Format name -> "module:function" of its exporter, imported only when that format is asked for.
FORMATS: dict[str, str] = {
    "videopose3d": "posesynth.export.videopose3d:export_videopose3d",
    "npz": "posesynth.export.arrays:export_npz",
    "h5": "posesynth.export.arrays:export_h5",
}


def exporter(fmt: str) -> Exporter:
    """The function that writes ``fmt``; ``ExportError`` for an unknown format."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    module, function = FORMATS[fmt].split(":")
    return getattr(importlib.import_module(module), function)


def export_store(path: str | Path, fmt: str, out: str | Path, *, keypoint_set: str = "h36m17",
                 noisy: bool = False, name: str | None = None, overwrite: bool = False) -> list[Path]:
    """Export the (complete) store at ``path`` as ``fmt`` to ``out``; returns the files written.

    ``out``: a file or a folder, as the format says.  ``name`` defaults to the store's name
    without its suffix.
    """
    from posesynth.store import open_store

    write = exporter(fmt)
    options = ExportOptions(name or Path(path).stem, keypoint_set, noisy, overwrite)
    return write(open_store(path), Path(out), options)
