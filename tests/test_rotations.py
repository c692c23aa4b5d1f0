"""Property tests for posesynth.rotations (float32 and float64, any batch shape)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.transform import Rotation

from posesynth import rotations as rot

DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: 2e-5, torch.float64: 1e-10}

finite = st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False)
vec3 = arrays(np.float64, (3,), elements=finite)
batch_of_vec3 = arrays(np.float64, st.tuples(st.integers(1, 5), st.just(3)), elements=finite)


def random_rotations(n: int, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    return torch.as_tensor(Rotation.random(n, random_state=seed).as_matrix(), dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=60, deadline=None)
@given(aa=batch_of_vec3)
def test_axis_angle_matches_scipy(dtype, aa):
    R = rot.axis_angle_to_matrix(torch.as_tensor(aa, dtype=dtype))
    expected = Rotation.from_rotvec(aa).as_matrix()
    np.testing.assert_allclose(R.numpy(), expected, atol=50 * TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=60, deadline=None)
@given(aa=vec3)
def test_axis_angle_round_trip(dtype, aa):
    angle = np.linalg.norm(aa)
    if angle > math.pi - 1e-3:  # keep to the principal branch
        aa = aa / angle * (angle % (math.pi - 1e-3))
    back = rot.matrix_to_axis_angle(rot.axis_angle_to_matrix(torch.as_tensor(aa, dtype=dtype)))
    np.testing.assert_allclose(back.numpy(), aa, atol=200 * TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_matrix_round_trips_through_every_representation(dtype):
    R = random_rotations(500, dtype).reshape(5, 100, 3, 3)  # any batch shape
    tol = 100 * TOL[dtype]
    torch.testing.assert_close(rot.rot6d_to_matrix(rot.matrix_to_rot6d(R)), R, atol=tol, rtol=0)
    torch.testing.assert_close(rot.quaternion_to_matrix(rot.matrix_to_quaternion(R)), R, atol=tol, rtol=0)
    torch.testing.assert_close(rot.axis_angle_to_matrix(rot.matrix_to_axis_angle(R)), R, atol=tol, rtol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=60, deadline=None)
@given(r6=arrays(np.float64, (4, 6), elements=finite))
def test_rot6d_gives_orthonormal_matrices(dtype, r6):
    a1, a2 = r6[:, :3], r6[:, 3:]
    # Gram-Schmidt needs two independent, non-zero vectors.
    cross = np.linalg.norm(np.cross(a1, a2), axis=-1)
    if (cross < 1e-3 * np.linalg.norm(a1, axis=-1) * np.linalg.norm(a2, axis=-1) + 1e-6).any():
        return
    R = rot.rot6d_to_matrix(torch.as_tensor(r6, dtype=dtype))
    eye = torch.eye(3, dtype=dtype).expand_as(R)
    torch.testing.assert_close(R.transpose(-1, -2) @ R, eye, atol=100 * TOL[dtype], rtol=0)
    torch.testing.assert_close(torch.det(R), torch.ones(4, dtype=dtype), atol=100 * TOL[dtype], rtol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_quaternion_matches_scipy_on_near_pi_rotations(dtype):
    axes = torch.nn.functional.normalize(torch.randn(64, 3, dtype=torch.float64), dim=-1)
    aa = axes * (math.pi - 1e-4)
    R = rot.axis_angle_to_matrix(aa).to(dtype)
    q = rot.matrix_to_quaternion(R)
    xyzw = Rotation.from_matrix(R.double().numpy()).as_quat()
    expected = np.concatenate([xyzw[:, 3:], xyzw[:, :3]], -1)
    expected *= np.sign(expected[:, :1] + 1e-12)
    # q and -q are the same rotation; near pi, w ~ 0 and the sign is arbitrary.
    diff = np.minimum(np.abs(q.numpy() - expected).max(-1), np.abs(q.numpy() + expected).max(-1))
    assert diff.max() < 1e-3


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=60, deadline=None)
@given(a=vec3, b=vec3)
def test_rotation_between_maps_a_onto_b(dtype, a, b):
    if np.linalg.norm(a) < 1e-3 or np.linalg.norm(b) < 1e-3:
        return
    A, B = torch.as_tensor(a, dtype=dtype), torch.as_tensor(b, dtype=dtype)
    R = rot.rotation_between(A, B)
    got = R @ (A / A.norm())
    torch.testing.assert_close(got, B / B.norm(), atol=1e3 * TOL[dtype], rtol=0)
    torch.testing.assert_close(torch.det(R), torch.tensor(1.0, dtype=dtype), atol=1e3 * TOL[dtype], rtol=0)


def test_rotation_between_opposite_vectors_is_a_half_turn():
    a = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    R = rot.rotation_between(a, -a)
    torch.testing.assert_close((R @ a.unsqueeze(-1)).squeeze(-1), -a)
    torch.testing.assert_close(rot.geodesic_angle(torch.eye(3).expand_as(R), R), torch.full((2,), math.pi))


@pytest.mark.parametrize("dtype", DTYPES)
def test_project_to_so3_recovers_a_rotation_from_noise(dtype):
    R = random_rotations(50, dtype, seed=3)
    noisy = R + 1e-3 * torch.randn(R.shape, dtype=dtype, generator=torch.Generator().manual_seed(0))
    P = rot.project_to_so3(noisy)
    assert rot.geodesic_angle(P, R).max() < 5e-3
    torch.testing.assert_close(torch.det(P), torch.ones(50, dtype=dtype), atol=1e-4, rtol=0)


def test_conversions_are_differentiable():
    aa = torch.randn(8, 3, dtype=torch.float64, requires_grad=True)
    r6 = rot.matrix_to_rot6d(rot.axis_angle_to_matrix(aa))
    assert torch.autograd.gradcheck(lambda x: rot.rot6d_to_matrix(x), (r6.detach().requires_grad_(),))
    assert torch.autograd.gradcheck(rot.axis_angle_to_matrix, (aa,))
    # The gradient at exactly zero rotation is finite.
    zero = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    rot.axis_angle_to_matrix(zero).sum().backward()
    assert torch.isfinite(zero.grad).all()
