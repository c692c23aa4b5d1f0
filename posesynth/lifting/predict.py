"""3D from a detector's 2D keypoints: ``posesynth lift predict L.pt --keypoints K.npz``.

The input file (``.npz``) holds
- ``keypoints``: (N, J, 2) pixels, or (N, J, 3) with a confidence last (ignored); (J, 2) for one;
- ``K``: the intrinsics, (3, 3) for every frame or (N, 3, 3); without it the keypoints must
  already be normalised camera coordinates ``((u - cx) / fx, (v - cy) / fy)`` (``normalised=True``);
- optionally ``joint_names`` (J,) or ``layout`` (``"h36m17"``, ``"coco17"``): checked against
  the lifter's keypoint set (keypoints in another order are reordered by name).

The output file holds ``joints3d`` (N, J, 3): camera frame, metres, relative to the root
keypoint; ``joint_names``; and for a cGAN lifter its SMPL parameters (axis-angle
``global_orient`` (N, 3) in the camera frame, ``body_pose`` (N, 69), ``betas`` (N, 10)) and,
when asked, ``hypotheses`` (N, k, J, 3).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from posesynth.keypoint_sets import KEYPOINT_SETS
from posesynth.lifting.checkpoint import Lifter, LifterError
from posesynth.lifting.features import lifter_features, root_weights
from posesynth.outputs import atomic_output, check_output
from posesynth.rotations import matrix_to_axis_angle


def read_detections(path: str | Path, lifter: Lifter, normalised: bool = False) -> np.ndarray:
    """Normalised camera coordinates (N, J, 2) in the lifter's keypoint order."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise LifterError(f"{path}: not an .npz keypoint file")
    try:
        data = dict(np.load(path, allow_pickle=False))
    except (OSError, ValueError) as exc:
        raise LifterError(f"{path}: not a readable .npz keypoint file ({exc})") from None
    if "keypoints" not in data:
        raise LifterError(f"{path}: no 'keypoints' array (it has {', '.join(sorted(data)) or 'nothing'})")
    points = np.asarray(data["keypoints"], dtype=np.float64)
    points = points[None] if points.ndim == 2 else points
    names = lifter.kset.joint_names
    if points.ndim != 3 or points.shape[-1] not in (2, 3):
        raise LifterError(f"{path}: keypoints must be (N, J, 2) or (N, J, 3), got {tuple(data['keypoints'].shape)}")
    points = points[..., :2][:, _order(path, data, names, points.shape[1])]
    if not np.isfinite(points).all():
        raise LifterError(f"{path}: keypoints hold NaN or infinite values")
    if "K" not in data:
        if not normalised:
            raise LifterError(f"{path}: no intrinsics 'K'; add them, or pass normalised keypoints (--normalised)")
        return points
    K = np.asarray(data["K"], dtype=np.float64)
    if K.shape == (3, 3):
        K = np.broadcast_to(K, (len(points), 3, 3))
    if K.shape != (len(points), 3, 3):
        raise LifterError(f"{path}: K must be (3, 3) or ({len(points)}, 3, 3), got {np.shape(data['K'])}")
    focal = np.stack([K[:, 0, 0], K[:, 1, 1]], -1)[:, None]
    return (points - K[:, None, :2, 2]) / focal


def _order(path: Path, data: dict[str, np.ndarray], names: tuple[str, ...], J: int) -> np.ndarray:
    """Indices that put the file's keypoints in ``names``' order."""
    if "joint_names" in data:
        given = [str(n) for n in data["joint_names"]]
        missing = [n for n in names if n not in given]
        if missing:
            raise LifterError(f"{path}: the lifter needs keypoints {list(names)}; missing {missing}")
        return np.array([given.index(n) for n in names])
    if "layout" in data and str(data["layout"]) != "":
        layout = str(data["layout"])
        if layout not in KEYPOINT_SETS:
            raise LifterError(f"{path}: unknown layout {layout!r}; known: {', '.join(KEYPOINT_SETS)}")
        return _order(path, {"joint_names": np.array(KEYPOINT_SETS[layout].joint_names)}, names, J)
    if J != len(names):
        raise LifterError(f"{path}: {J} keypoints per frame, the lifter's {len(names)}-keypoint set needs {len(names)}")
    return np.arange(J)


def predict_file(lifter: Lifter, keypoints: str | Path, out: str | Path, normalised: bool = False,
                 hypotheses: int = 0, seed: int = 0, overwrite: bool = False) -> int:
    """Write ``out`` (.npz, see the module doc; an existing file only with ``overwrite``, written
    atomically); returns the number of frames."""
    check_output(out, overwrite)
    coords = torch.as_tensor(read_detections(keypoints, lifter, normalised), dtype=torch.float32)
    features = lifter_features(coords, root_weights(lifter.kset))
    result = {"joints3d": lifter.predict_features(features).numpy(), "joint_names": np.array(lifter.kset.joint_names)}
    if lifter.config.model == "cgan":
        rotmats, betas = lifter.smpl(features)
        result |= {"global_orient": matrix_to_axis_angle(rotmats[:, 0]).numpy(),
                   "body_pose": matrix_to_axis_angle(rotmats[:, 1:]).flatten(1).numpy(), "betas": betas.numpy()}
        if hypotheses:
            generator = torch.Generator().manual_seed(seed)
            result["hypotheses"] = lifter.hypotheses(features, hypotheses, generator).numpy()
    elif hypotheses:
        raise LifterError("--hypotheses needs a cgan lifter")
    with atomic_output(out, overwrite) as tmp:
        np.savez(tmp, **result)
    return len(coords)
