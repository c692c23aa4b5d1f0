"""Forward kinematics against a slow, independent reference."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from posesynth.kinematics import bone_gram, forward_kinematics, global_to_local
from posesynth.skeleton import NUM_JOINTS, SMPL_PARENTS, children, mirror_index


def slow_fk(local: np.ndarray, rest: np.ndarray, parents) -> np.ndarray:
    """One frame, recursive from the root, with 4x4 homogeneous transforms."""
    out = np.zeros_like(rest)

    def visit(j: int, parent_T: np.ndarray) -> None:
        T = np.eye(4)
        T[:3, :3] = local[j]
        T[:3, 3] = rest[j] - (rest[parents[j]] if parents[j] >= 0 else 0)
        world = parent_T @ T
        out[j] = world[:3, 3]
        for c in children(tuple(parents))[j]:
            visit(c, world)

    visit(0, np.eye(4))
    return out


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), batch=st.integers(1, 4))
def test_fk_matches_slow_reference(seed, batch):
    rng = np.random.default_rng(seed)
    local = Rotation.random(batch * NUM_JOINTS, random_state=seed).as_matrix().reshape(batch, NUM_JOINTS, 3, 3)
    rest = rng.normal(size=(NUM_JOINTS, 3)) * 0.2
    G, J = forward_kinematics(torch.as_tensor(local), torch.as_tensor(rest))
    for b in range(batch):
        np.testing.assert_allclose(J[b].numpy(), slow_fk(local[b], rest, SMPL_PARENTS), atol=1e-12)
    # Global rotations are orthonormal and global_to_local inverts them.
    eye = torch.eye(3, dtype=G.dtype).expand_as(G)
    torch.testing.assert_close(G.transpose(-1, -2) @ G, eye)
    torch.testing.assert_close(global_to_local(G), torch.as_tensor(local))


def test_fk_preserves_bone_lengths_and_identity_is_rest():
    rest = torch.randn(NUM_JOINTS, 3, dtype=torch.float64)
    local = torch.as_tensor(Rotation.random(2 * NUM_JOINTS, random_state=1).as_matrix()).reshape(2, NUM_JOINTS, 3, 3)
    _, J = forward_kinematics(local, rest)
    parents = torch.tensor(SMPL_PARENTS[1:])
    lengths = (J[:, 1:] - J[:, parents]).norm(dim=-1)
    rest_lengths = (rest[1:] - rest[parents]).norm(dim=-1)
    torch.testing.assert_close(lengths, rest_lengths.expand_as(lengths))
    _, J0 = forward_kinematics(torch.eye(3, dtype=torch.float64).expand(1, NUM_JOINTS, 3, 3), rest)
    torch.testing.assert_close(J0[0], rest)


def test_skeleton_tables_are_consistent():
    assert len(SMPL_PARENTS) == NUM_JOINTS == 24
    assert all(p < j for j, p in enumerate(SMPL_PARENTS))
    m = mirror_index()
    assert all(m[m[j]] == j for j in range(NUM_JOINTS))
    assert m[1] == 2 and m[0] == 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fk_gradients_flow(dtype):
    local = torch.eye(3, dtype=dtype).repeat(2, NUM_JOINTS, 1, 1).requires_grad_()
    rest = torch.randn(NUM_JOINTS, 3, dtype=dtype)
    _, J = forward_kinematics(local, rest)
    J.sum().backward()
    assert torch.isfinite(local.grad).all() and local.grad.abs().sum() > 0


def test_remove_yaw_faces_plus_z_and_keeps_tilt():
    from posesynth.kinematics import remove_yaw, rotation_about_y, yaw_angle

    R = torch.as_tensor(Rotation.random(200, random_state=4).as_matrix())
    canon = remove_yaw(R)
    torch.testing.assert_close(yaw_angle(canon), torch.zeros(200, dtype=R.dtype), atol=1e-9, rtol=0)
    up = torch.tensor([0.0, 1.0, 0.0], dtype=R.dtype)
    torch.testing.assert_close(canon.transpose(-1, -2) @ up, R.transpose(-1, -2) @ up)
    turn = rotation_about_y(torch.tensor(0.7, dtype=R.dtype))
    torch.testing.assert_close(remove_yaw(turn @ R), canon)


# ---------------------------------------------------------------------------- bone Gram matrix
EDGES = tuple((p, j) for j, p in enumerate(SMPL_PARENTS) if p >= 0)


def test_bone_gram_holds_squared_bone_lengths_and_bone_products():
    joints = torch.randn(5, NUM_JOINTS, 3, dtype=torch.float64)
    gram = bone_gram(joints, EDGES)
    assert gram.shape == (5, 23 * 24 // 2)
    bones = torch.stack([joints[:, c] - joints[:, p] for p, c in EDGES], dim=1)
    torch.testing.assert_close(gram[:, 0], (bones[:, 0] ** 2).sum(-1))  # (0, 0): the first bone, squared
    torch.testing.assert_close(gram[:, 1], (bones[:, 0] * bones[:, 1]).sum(-1))  # (0, 1)


def test_bone_gram_ignores_where_the_body_is_and_how_it_is_turned():
    joints = torch.randn(5, NUM_JOINTS, 3, dtype=torch.float64)
    turn = torch.as_tensor(Rotation.random(random_state=0).as_matrix())
    moved = joints @ turn.T + torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    torch.testing.assert_close(bone_gram(moved, EDGES), bone_gram(joints, EDGES))
