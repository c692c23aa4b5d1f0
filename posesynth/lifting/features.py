"""What lifters see and what they predict.

Input: 2D keypoints in pixels (B, J, 2) with the intrinsics K (B, 3, 3) are mapped to normalised
camera coordinates ``((u - cx) / fx, (v - cy) / fy)`` (so one lifter serves every focal length
and image size), centred on the root keypoint and divided by their RMS distance to it (so the
person's size in the image, i.e. distance, does not matter).  The root's own normalised position
is appended: it tells the lifter where the person sits in the field of view (perspective).
Features: (B, 2 J + 2).

Output: 3D keypoints in the camera frame (x right, y down, z forward), metres, relative to the
root (B, J, 3).

The root is the ``pelvis`` keypoint of sets that have one (smpl24, h36m17) and the midpoint of the
hips otherwise (coco17).  Lens distortion is not undone: distorted 2D is treated as it comes.
"""

from __future__ import annotations

import torch

from posesynth.keypoint_sets import KEYPOINT_SETS, KeypointSet

LIFTABLE_SETS = ("h36m17", "coco17", "smpl24")


def keypoint_set(name: str) -> KeypointSet:
    if name not in LIFTABLE_SETS:
        raise ValueError(f"keypoint set must be one of {LIFTABLE_SETS}, got {name!r}")
    return KEYPOINT_SETS[name]


def root_weights(kset: KeypointSet) -> torch.Tensor:
    """(J,) weights whose weighted sum of keypoints is the root."""
    names = kset.joint_names
    w = torch.zeros(len(names))
    if "pelvis" in names:
        w[names.index("pelvis")] = 1.0
    else:
        w[names.index("left_hip")] = w[names.index("right_hip")] = 0.5
    return w


def root_of(points: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(B, J, C) -> (B, 1, C)"""
    return torch.einsum("j,bjc->bc", weights.to(points), points).unsqueeze(1)


def camera_coordinates(pixels: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Pixels (B, J, 2) and intrinsics (B, 3, 3) -> normalised camera coordinates (B, J, 2)."""
    focal = torch.stack([K[:, 0, 0], K[:, 1, 1]], dim=-1)[:, None]
    centre = K[:, :2, 2][:, None]
    return (pixels - centre) / focal


def rms_scale(centred: torch.Tensor) -> torch.Tensor:
    """Root-centred 2D (B, J, 2) -> (B,) their RMS distance to the root (at least 1e-6): the unit
    the lifters' features divide by."""
    return centred.square().sum(-1).mean(-1).sqrt().clamp_min(1e-6)


def lifter_features(coords: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Normalised camera coordinates (B, J, 2) -> features (B, 2 J + 2); see the module doc."""
    root = root_of(coords, weights)
    centred = coords - root
    scale = rms_scale(centred)[:, None, None]
    return torch.cat([(centred / scale).flatten(1), root.flatten(1)], dim=-1)


def root_relative(points: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(B, J, 3) -> the same relative to the root."""
    return points - root_of(points, weights)


def lifter_batch(pixels: torch.Tensor, camera: torch.Tensor, K: torch.Tensor,
                 weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A store batch's pixels (B, J, 2), camera-frame 3D (B, J, 3) and K (B, 3, 3) -> the lifter's
    features (B, 2 J + 2), the normalised 2D (B, J, 2) and the root-relative target (B, J, 3)."""
    coords = camera_coordinates(pixels, K)
    return lifter_features(coords, weights), coords, root_relative(camera, weights)
