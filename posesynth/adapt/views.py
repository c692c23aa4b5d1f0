"""Generated poses seen as the target sees its people: world keypoints -> cameras -> normalised 2D.

The same geometry as ``sample`` (``posesynth.sampling.generate``): forward kinematics on the
body model's rest joints for the betas, the keypoint set's world keypoints
(``keypoint_sets.compute_keypoints``), cameras drawn around each body from a
``CameraDistribution`` (``cameras.sample_cameras``, which also keeps the whole body in frame)
and ``cameras.project`` with its lens.  The body is not put on the floor: cameras aim at the
body's centre, so the 2D does not depend on where it stands.  Everything from the rotations to
the 2D is differentiable (the cameras themselves are drawn from the detached keypoints).

Shapes: B poses, V views, J keypoints of the set.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from posesynth.body_model import BodyModel
from posesynth.cameras import CameraDistribution, Cameras, project, sample_cameras
from posesynth.keypoint_sets import compute_keypoints
from posesynth.kinematics import forward_kinematics


@dataclass(frozen=True)
class Bodies:
    """B posed bodies: their 24 world joints (B, 24, 3) and keypoints (B, J, 3), metres."""

    joints: torch.Tensor
    keypoints: torch.Tensor


def pose_bodies(rotmats: torch.Tensor, betas: torch.Tensor, body: BodyModel, layout: str) -> Bodies:
    """Local rotations (B, 24, 3, 3) on bodies of ``betas`` (B, K) -> ``Bodies`` of set ``layout``."""
    betas = torch.nn.functional.pad(betas, (0, body.num_betas - betas.shape[1])).to(rotmats)
    global_rotmats, joints = forward_kinematics(rotmats, body.rest_joints(betas).to(rotmats))
    return Bodies(joints, compute_keypoints([layout], body, global_rotmats, joints, betas)[layout])


def view_coords(bodies: Bodies, dist: CameraDistribution, generator: torch.Generator) -> torch.Tensor:
    """Normalised camera coordinates (B * V, J, 2), ``(u - cx) / fx`` of the projected pixels
    (lens included, as a detector's pixels through ``K``), of ``bodies`` through cameras drawn
    from ``dist`` with ``generator`` (a CPU generator, ``sample_cameras``' draws)."""
    return seen(bodies, dist, generator)[0]


def seen(bodies: Bodies, dist: CameraDistribution,
         generator: torch.Generator) -> tuple[torch.Tensor, Cameras, torch.Tensor]:
    """``view_coords`` (B * V, J, 2), the cameras (B, V) drawn for them and the keypoints in each
    camera's frame (B * V, J, 3), metres."""
    cams = sample_cameras(dist, bodies.joints.detach(), generator, keypoints_world=bodies.keypoints.detach())
    pixels, points = project(bodies.keypoints, cams)  # (B, V, J, 2), (B, V, J, 3)
    f = torch.stack([cams.K[..., 0, 0], cams.K[..., 1, 1]], -1)[:, :, None]
    c = cams.K[..., :2, 2][:, :, None]
    return ((pixels - c) / f).flatten(0, 1), cams, points.flatten(0, 1)
