"""How far a sample store's 2D is from a target's: ``posesynth info STORE --target-2d T``.

The store's clean 2D of the target's keypoint set (``keypoints/<set>/pixels`` through each view's
``K``: normalised camera coordinates), every view of its first ``max_rows`` rows, against the
target's fully visible frames (``posesynth.adapt.target``), by ``frechet.frechet_2d``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from posesynth.adapt.errors import AdaptError
from posesynth.adapt.frechet import frechet_2d
from posesynth.adapt.target import Target2D, read_target
from posesynth.store import open_store
from posesynth.stores.samples import KIND, camera_path, keypoints_path

MAX_ROWS = 100_000


def store_coords(path: str | Path, layout: str, max_rows: int = MAX_ROWS) -> np.ndarray:
    """Normalised camera coordinates (min(N, max_rows) * V, J, 2) of set ``layout`` in the sample
    store at ``path``; AdaptError if the store lacks the set."""
    group = open_store(Path(path), kind=KIND)
    name = keypoints_path(layout, "pixels")
    if name not in group:
        raise AdaptError(f"{path}: no {layout} keypoints to compare with the target (it has "
                         f"{', '.join(group.attrs['keypoint_sets'])})")
    pixels = np.asarray(group[name][:max_rows], dtype=np.float64)  # (N, V, J, 2)
    K = np.asarray(group[camera_path("K")][:max_rows], dtype=np.float64)  # (N, V, 3, 3)
    focal = np.stack([K[..., 0, 0], K[..., 1, 1]], -1)[:, :, None]
    coords = (pixels - K[:, :, None, :2, 2]) / focal
    return coords.reshape(-1, *coords.shape[2:])


def store_distance(path: str | Path, target: Target2D | str | Path, normalised: bool = False) -> dict:
    """{"target", "layout", "target_poses", "store_poses", "frechet_2d"} for the store at ``path``."""
    if not isinstance(target, Target2D):
        target = read_target(target, normalised)
    coords = store_coords(path, target.layout)
    return {"target": [f["path"] for f in target.files], "layout": target.layout, "target_poses": len(target),
            "store_poses": len(coords), "frechet_2d": frechet_2d(coords, target.coords, target.layout)}


def format_distance(result: dict) -> str:
    """The line ``info`` prints for ``store_distance``'s result."""
    return (f"target 2D: Fréchet distance {result['frechet_2d']:.4g} ({result['layout']}, normalised; "
            f"{result['store_poses']:,} store poses vs {result['target_poses']:,} target poses)")
