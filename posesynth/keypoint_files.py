"""2D keypoint files: a detector's output or 2D annotations, as ``lift predict`` and ``adapt`` read them.

A keypoint file (``.npz``, no pickles) holds
- ``keypoints``: (N, J, 2) pixels, or (N, J, 3) with a confidence or visibility last (a keypoint
  whose third value is <= 0 is missing: ``mask``); (J, 2) or (J, 3) for one frame;
- ``K``: the intrinsics, (3, 3) for every frame or (N, 3, 3); without it the keypoints must
  already be normalised camera coordinates ``((u - cx) / fx, (v - cy) / fy)`` (``normalised=True``);
- optionally ``joint_names`` (J,) or ``layout`` (a keypoint set: ``"h36m17"``, ``"coco17"``): the
  keypoints are reordered by name to the reader's set.

Every problem is an error of the caller's class naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posesynth.keypoint_sets import KEYPOINT_SETS
from posesynth.npz_files import NpzUnreadable, read_npz_arrays


@dataclass(frozen=True)
class KeypointFile:
    """One file's frames in a keypoint set's order."""

    path: Path
    coords: np.ndarray  # (N, J, 2) float64 normalised camera coordinates
    mask: np.ndarray  # (N, J) bool: the keypoint is given (no third column: all True)


def load_keypoint_arrays(path: str | Path, error: type[Exception]) -> dict[str, np.ndarray]:
    """The arrays of the ``.npz`` at ``path`` (checked to hold ``keypoints``)."""
    path = Path(path)
    try:
        data = read_npz_arrays(path, "keypoint file")
    except NpzUnreadable as exc:
        raise error(f"{path}: {exc}") from None
    if "keypoints" not in data:
        raise error(f"{path}: no 'keypoints' array (it has {', '.join(sorted(data)) or 'nothing'})")
    return data


def file_layout(path: str | Path, data: dict[str, np.ndarray], error: type[Exception]) -> str | None:
    """The keypoint set a file names: its ``layout``, or the set whose joints its ``joint_names``
    are (in any order); None when it names neither."""
    if "layout" in data and str(data["layout"]) != "":
        layout = str(data["layout"])
        if layout not in KEYPOINT_SETS:
            raise error(f"{path}: unknown layout {layout!r}; known: {', '.join(KEYPOINT_SETS)}")
        return layout
    if "joint_names" in data:
        given = {str(n) for n in data["joint_names"]}
        return next((name for name, s in KEYPOINT_SETS.items() if set(s.joint_names) == given), None)
    return None


def read_keypoint_file(path: str | Path, names: tuple[str, ...], error: type[Exception],
                       normalised: bool = False) -> KeypointFile:
    """The file's keypoints as normalised camera coordinates in ``names``' order (see the module doc)."""
    path = Path(path)
    data = load_keypoint_arrays(path, error)
    points = np.asarray(data["keypoints"], dtype=np.float64)
    points = points[None] if points.ndim == 2 else points
    if points.ndim != 3 or points.shape[-1] not in (2, 3):
        raise error(f"{path}: keypoints must be (N, J, 2) or (N, J, 3), got {tuple(data['keypoints'].shape)}")
    points = points[:, _order(path, data, names, points.shape[1], error)]
    if not np.isfinite(points).all():
        raise error(f"{path}: keypoints hold NaN or infinite values")
    mask = points[..., 2] > 0 if points.shape[-1] == 3 else np.ones(points.shape[:2], dtype=bool)
    return KeypointFile(path, _normalised(path, data, points[..., :2], normalised, error), mask)


def _normalised(path: Path, data: dict[str, np.ndarray], points: np.ndarray, normalised: bool,
                error: type[Exception]) -> np.ndarray:
    """Pixels (N, J, 2) and the file's ``K`` -> normalised camera coordinates (N, J, 2)."""
    if "K" not in data:
        if not normalised:
            raise error(f"{path}: no intrinsics 'K'; add them, or pass normalised keypoints (--normalised)")
        return points
    K = np.asarray(data["K"], dtype=np.float64)
    if K.shape == (3, 3):
        K = np.broadcast_to(K, (len(points), 3, 3))
    if K.shape != (len(points), 3, 3):
        raise error(f"{path}: K must be (3, 3) or ({len(points)}, 3, 3), got {np.shape(data['K'])}")
    focal = np.stack([K[:, 0, 0], K[:, 1, 1]], -1)[:, None]
    return (points - K[:, None, :2, 2]) / focal


def _order(path: Path, data: dict[str, np.ndarray], names: tuple[str, ...], J: int,
           error: type[Exception]) -> np.ndarray:
    """Indices that put the file's keypoints in ``names``' order."""
    if "joint_names" in data:
        given = [str(n) for n in data["joint_names"]]
        missing = [n for n in names if n not in given]
        if missing:
            raise error(f"{path}: needs keypoints {list(names)}; missing {missing}")
        return np.array([given.index(n) for n in names])
    layout = file_layout(path, data, error)
    if layout is not None:
        return _order(path, {"joint_names": np.array(KEYPOINT_SETS[layout].joint_names)}, names, J, error)
    if J != len(names):
        raise error(f"{path}: {J} keypoints per frame, the {len(names)}-keypoint set needs {len(names)}")
    return np.arange(J)
