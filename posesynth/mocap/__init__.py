"""Mocap readers: BVH and Acclaim ASF/AMC files to global joint positions and rotations.

    >>> from posesynth.mocap import read_motion
    >>> m = read_motion("hdm05/kickLFront1Reps/HDM_bd_kickLFront1Reps_003_120.amc")  # finds HDM_bd.asf
    >>> m.positions.shape, m.fps          # (T, 31, 3) metres, 120.0

Every reader returns a :class:`Motion` and raises :class:`MocapFormatError` (a ``ValueError``)
naming the file, line and frame for bad input.  Positions stay in the file's world frame
(both sources in the training pool are y-up); only lengths are converted, to metres.
See ``bvh.py``, ``asf.py`` and ``amc.py`` for each format's conventions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from posesynth.mocap.amc import read_amc
from posesynth.mocap.asf import AsfSkeleton, find_asf, read_asf
from posesynth.mocap.bvh import infer_length_scale, read_bvh
from posesynth.mocap.motion import MocapFormatError, Motion

__all__ = [
    "MOTION_SUFFIXES",
    "AsfSkeleton",
    "MocapFormatError",
    "Motion",
    "find_asf",
    "find_motion_files",
    "infer_length_scale",
    "read_amc",
    "read_asf",
    "read_bvh",
    "read_motion",
]

MOTION_SUFFIXES = (".bvh", ".amc")


def read_motion(
    path: str | os.PathLike[str],
    *,
    skeleton: str | os.PathLike[str] | None = None,
    length_scale: float | None = None,
) -> Motion:
    """Read a .bvh or .amc file (chosen by suffix, any case).

    Args:
        path: the motion file.  An .asf alone is refused: pass its .amc.
        skeleton: for .amc, the .asf file; ``None`` looks for it next to the .amc and up to two
            folders up (``01_01.amc`` -> ``01.asf``, ``HDM_bd_kick…_120.amc`` -> ``HDM_bd.asf``).
        length_scale: metres per file length unit; ``None``: BVH infers it from the skeleton's
            size, AMC uses the ASF's ``:units length`` (1/L inch).

    Returns:
        :class:`Motion` with ``positions`` (T, J, 3) in metres and ``rotations`` (T, J, 3, 3).

    Raises:
        MocapFormatError: unknown suffix, missing/unreadable/malformed file or skeleton.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".bvh":
        if skeleton is not None:
            raise ValueError(f"{path}: skeleton= is only for .amc files; a BVH file holds its own skeleton")
        return read_bvh(path, length_scale=length_scale)
    if suffix == ".amc":
        return read_amc(path, skeleton, length_scale=length_scale)
    if suffix == ".asf":
        raise MocapFormatError(
            path,
            "an .asf file holds only a skeleton; pass the .amc motion file instead "
            "(its skeleton is found automatically, or give it with skeleton=)",
        )
    raise MocapFormatError(
        path, f"unknown mocap file type {path.suffix!r}; supported: {', '.join(MOTION_SUFFIXES)}"
    )


def find_motion_files(root: str | os.PathLike[str]) -> list[Path]:
    """Every .bvh/.amc file under ``root`` (any suffix case), sorted by path."""
    return sorted(_walk(Path(root)))


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if os.path.splitext(name)[1].lower() in MOTION_SUFFIXES:
                yield Path(dirpath) / name
