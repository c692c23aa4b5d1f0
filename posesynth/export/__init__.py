"""``posesynth export``: a store's contents in other trainers' formats, one module per format.

- ``npz``, ``h5`` (``posesynth.export.arrays``): every array of any store under its store name,
  and its attributes.
- ``videopose3d`` (``posesynth.export.videopose3d``, sample stores): VideoPose3D's files with
  posesynth's own cameras.
- ``h36m`` (``posesynth.export.h36m``, sample stores): Human3.6M's prepared files for VideoPose3D,
  the 2D re-projected through Human3.6M's four calibrated cameras.
- ``humandata`` (``posesynth.export.humandata``, sample stores): MMHuman3D's HumanData ``.npz``,
  one row per sample view.
- ``coco`` (``posesynth.export.coco``, sample stores): a COCO person-keypoints JSON, one image
  per sample view.

Each format is a function ``(group, out, options) -> list[Path]`` in ``FORMATS``; every file is
written under a temporary name and renamed at the end (``posesynth.outputs``), so an export never
leaves a truncated file, and an existing file is replaced only with ``overwrite``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from posesynth.errors import PosesynthError

if TYPE_CHECKING:  # the CLI reads FORMATS at start-up: keep this module free of heavy imports
    import zarr


class ExportError(PosesynthError, ValueError):
    """An export that cannot be made as asked; the message says why."""


@dataclass(frozen=True)
class ExportOptions:
    """What a format may use beyond the store: ``keypoint_set`` the 3D keypoint set (and the 2D
    one unless ``keypoint_set_2d``), ``noisy`` the noisy 2D, ``test_fraction`` the share of samples
    (the last rows) held out as test subjects, ``name`` the dataset name in file names,
    ``overwrite`` allows replacing files."""

    name: str
    keypoint_set: str = "h36m17"
    keypoint_set_2d: str | None = None
    noisy: bool = False
    test_fraction: float = 0.2
    overwrite: bool = False

    @property
    def set_2d(self) -> str:
        """The 2D keypoint set: ``keypoint_set_2d``, else ``keypoint_set``."""
        return self.keypoint_set_2d or self.keypoint_set


Exporter = Callable[["zarr.Group", Path, ExportOptions], list[Path]]


# Format name -> "module:function" of its exporter, imported only when that format is asked for.
FORMATS: dict[str, str] = {
    "videopose3d": "posesynth.export.videopose3d:export_videopose3d",
    "h36m": "posesynth.export.h36m:export_h36m",
    "humandata": "posesynth.export.humandata:export_humandata",
    "coco": "posesynth.export.coco:export_coco",
    "npz": "posesynth.export.arrays:export_npz",
    "h5": "posesynth.export.arrays:export_h5",
}


def exporter(fmt: str) -> Exporter:
    """The function that writes ``fmt``; ``ExportError`` for an unknown format."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    module, function = FORMATS[fmt].split(":")
    return getattr(importlib.import_module(module), function)


def export_store(path: str | Path, fmt: str, out: str | Path, *, name: str | None = None,
                 **options: Any) -> list[Path]:
    """Export the (complete) store at ``path`` as ``fmt`` to ``out``; returns the files written.

    ``out``: a file or a folder, as the format says.  ``name`` defaults to the store's name
    without its suffix; ``options``: the other fields of ``ExportOptions``.
    """
    from posesynth.store import open_store
    from posesynth.stores import checked_arrays

    write = exporter(fmt)
    group = open_store(path)
    checked_arrays(group)  # a damaged store is refused before any file is written
    return write(group, Path(out), ExportOptions(name or Path(path).stem, **options))
