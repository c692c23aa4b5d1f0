"""Forward kinematics on a kinematic tree, batched and differentiable (PyTorch).

A pose is a set of per-joint rotations relative to the parent, expressed in the
rest pose's frame (SMPL's convention): at identity rotations the skeleton stands
in its rest pose.  Rest joint positions come from the body model.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from posesynth.skeleton import SMPL_PARENTS


def forward_kinematics(
    local_rotmats: torch.Tensor,
    rest_joints: torch.Tensor,
    parents: Sequence[int] = SMPL_PARENTS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pose a skeleton.

    Args:
        local_rotmats: (B, J, 3, 3) rotation of each joint relative to its parent;
            entry 0 is the global orientation.
        rest_joints: (B, J, 3) or (J, 3) rest-pose joint positions.
        parents: length-J parent indices, parents before children, root = -1.

    Returns:
        global_rotmats (B, J, 3, 3) and joints (B, J, 3).  The root stays at its
        rest position (add a translation afterwards, as SMPL's ``transl`` does).
    """
    if rest_joints.dim() == 2:
        rest_joints = rest_joints.unsqueeze(0).expand(local_rotmats.shape[0], -1, -1)
    globals_: list[torch.Tensor] = []
    positions: list[torch.Tensor] = []
    for j, p in enumerate(parents):
        if p < 0:
            globals_.append(local_rotmats[:, j])
            positions.append(rest_joints[:, j])
            continue
        offset = (rest_joints[:, j] - rest_joints[:, p]).unsqueeze(-1)
        positions.append(positions[p] + (globals_[p] @ offset).squeeze(-1))
        globals_.append(globals_[p] @ local_rotmats[:, j])
    return torch.stack(globals_, dim=1), torch.stack(positions, dim=1)


def global_to_local(global_rotmats: torch.Tensor, parents: Sequence[int] = SMPL_PARENTS) -> torch.Tensor:
    """Inverse of the rotation part of FK: (B, J, 3, 3) global -> (B, J, 3, 3) local."""
    local = global_rotmats.clone()
    for j, p in enumerate(parents):
        if p >= 0:
            local[:, j] = global_rotmats[:, p].transpose(-1, -2) @ global_rotmats[:, j]
    return local


def bone_gram(joints: torch.Tensor, edges: Sequence[tuple[int, int]]) -> torch.Tensor:
    """The kinematic-chain-space features of RepNet (Wandt & Rosenhahn 2019): the upper
    triangle, diagonal included, of the Gram matrix of the bone vectors.

    Args:
        joints: (B, J, 3) joint positions.
        edges: E bones as (parent, child) joint indices; a bone vector is child - parent.

    Returns:
        (B, E (E + 1) / 2): bone lengths squared on the diagonal, the products of pairs of
        bones (their angles) off it.
    """
    parent, child = zip(*edges)
    bones = joints[:, list(child)] - joints[:, list(parent)]  # (B, E, 3)
    gram = bones @ bones.transpose(1, 2)
    i, j = torch.triu_indices(len(edges), len(edges))
    return gram[:, i, j]


def yaw_angle(global_rotmat: torch.Tensor) -> torch.Tensor:
    """Heading (...,) in radians of a body with global rotation (..., 3, 3): the angle
    about world +y from +z to where the body faces (its rotated +z, projected on the floor)."""
    forward = global_rotmat[..., :, 2]
    return torch.atan2(forward[..., 0], forward[..., 2])


def rotation_about_y(angle: torch.Tensor) -> torch.Tensor:
    """Rotations (..., 3, 3) by ``angle`` (...,) radians about world +y."""
    c, s = torch.cos(angle), torch.sin(angle)
    o, i = torch.zeros_like(angle), torch.ones_like(angle)
    return torch.stack([c, o, s, o, i, o, -s, o, c], dim=-1).reshape(angle.shape + (3, 3))


def remove_yaw(global_rotmat: torch.Tensor) -> torch.Tensor:
    """Turn bodies (..., 3, 3) about world +y so they face +z; pitch and roll are kept."""
    return rotation_about_y(-yaw_angle(global_rotmat)) @ global_rotmat
