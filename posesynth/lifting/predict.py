"""3D from a detector's 2D keypoints: ``posesynth lift predict L.pt --keypoints K.npz``.

The input file (``.npz``) is a keypoint file (``posesynth.keypoint_files``: ``keypoints``
(N, J, 2) pixels with ``K``, or normalised; an optional confidence column, ignored here;
``joint_names`` or ``layout``, checked against the lifter's keypoint set and reordered by name).

The output file holds ``joints3d`` (N, J, 3): camera frame, metres, relative to the root
keypoint; ``joint_names``; and for a cGAN lifter its SMPL parameters (axis-angle
``global_orient`` (N, 3) in the camera frame, ``body_pose`` (N, 69), ``betas`` (N, 10)) and,
when asked, ``hypotheses`` (N, k, J, 3).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from posesynth.keypoint_files import read_keypoint_file
from posesynth.lifting.checkpoint import Lifter, LifterError
from posesynth.lifting.features import lifter_features, root_weights
from posesynth.outputs import atomic_output, check_output
from posesynth.rotations import matrix_to_axis_angle


def read_detections(path: str | Path, lifter: Lifter, normalised: bool = False) -> np.ndarray:
    """Normalised camera coordinates (N, J, 2) in the lifter's keypoint order (the confidence
    column, if any, is not used: every keypoint is lifted)."""
    return read_keypoint_file(path, lifter.kset.joint_names, LifterError, normalised).coords


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
