"""Target 2D: the unlabelled 2D keypoints of the domain to adapt to, from one file or a folder.

The files are keypoint files (``posesynth.keypoint_files``: the ones ``lift predict --keypoints``
reads) of one layout, ``h36m17`` or ``coco17``, named by the file's ``layout`` or ``joint_names``.
Frames with a missing keypoint (confidence or visibility <= 0) are left out: normalising a pose
(root-centred, unit scale) needs every keypoint, so the target is its fully visible frames, and
at least ``MIN_POSES`` of them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posesynth.adapt.errors import AdaptError
from posesynth.keypoint_files import file_layout, load_keypoint_arrays, read_keypoint_file
from posesynth.keypoint_sets import KEYPOINT_SETS

TARGET_LAYOUTS = ("h36m17", "coco17")
MIN_POSES = 256


@dataclass(frozen=True)
class Target2D:
    """The target's fully visible frames in one keypoint set."""

    layout: str  # a keypoint set of TARGET_LAYOUTS
    coords: np.ndarray  # (N, J, 2) normalised camera coordinates
    files: tuple[dict, ...]  # per file: path, sha256, frames, frames_used

    def __len__(self) -> int:
        return len(self.coords)

    def record(self) -> dict:
        """What an adapted checkpoint records of its target (plain values)."""
        return {"layout": self.layout, "poses": len(self), "files": [dict(f) for f in self.files]}


def target_files(path: str | Path) -> list[Path]:
    """``path`` itself, or the ``.npz`` files of a folder, sorted."""
    path = Path(path)
    if not path.exists():
        raise AdaptError(f"{path}: no such target 2D file or folder")
    files = sorted(path.glob("*.npz")) if path.is_dir() else [path]
    if not files:
        raise AdaptError(f"{path}: a folder without .npz keypoint files")
    return files


def _layout(path: Path) -> str:
    layout = file_layout(path, load_keypoint_arrays(path, AdaptError), AdaptError)
    if layout is None:
        raise AdaptError(f"{path}: say which keypoints these are: add 'layout' ({' or '.join(TARGET_LAYOUTS)}) "
                         "or 'joint_names'")
    if layout not in TARGET_LAYOUTS:
        raise AdaptError(f"{path}: layout {layout} cannot be a target; use {' or '.join(TARGET_LAYOUTS)}")
    return layout


def read_target(path: str | Path, normalised: bool = False, min_poses: int = MIN_POSES) -> Target2D:
    """The target 2D at ``path`` (a file or a folder of them, one layout); AdaptError naming the
    file for a bad one, for files of different layouts, and for fewer than ``min_poses`` usable frames."""
    files = target_files(path)
    layouts = {f: _layout(f) for f in files}
    layout = layouts[files[0]]
    other = next((f for f in files if layouts[f] != layout), None)
    if other is not None:
        raise AdaptError(f"{other}: layout {layouts[other]}, but {files[0]} is {layout}; a target has one layout")
    coords, records = [], []
    for f in files:
        read = read_keypoint_file(f, KEYPOINT_SETS[layout].joint_names, AdaptError, normalised)
        full = read.mask.all(-1)
        coords.append(read.coords[full])
        records.append({"path": str(f), "sha256": hashlib.sha256(f.read_bytes()).hexdigest(),
                        "frames": int(len(full)), "frames_used": int(full.sum())})
    target = Target2D(layout, np.concatenate(coords), tuple(records))
    if len(target) < min_poses:
        raise AdaptError(f"{path}: {len(target)} frames with every keypoint visible; a target needs at least "
                         f"{min_poses}")
    return target
