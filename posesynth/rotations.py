"""Rotation conversions in PyTorch, batched over any leading shape and differentiable.

Glossary of shapes (``...`` is any batch shape):

- axis-angle  ``aa``  (..., 3): rotation vector, angle = norm in radians (files use this).
- matrix      ``R``   (..., 3, 3): rotation matrix acting on column vectors (``R @ x``).
- 6D          ``r6``  (..., 6): the first two *columns* of ``R``, ``[R[:, 0], R[:, 1]]``
  (Zhou et al., CVPR 2019, "On the Continuity of Rotation Representations"); the
  networks use this because it is continuous.
- quaternion  ``q``   (..., 4): ``(w, x, y, z)``, scalar first.

Euler angles from mocap files are handled with ``scipy.spatial.transform.Rotation``
in the readers; this module is for the tensors the library computes with.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_EPS = 1e-8


def _skew(v: torch.Tensor) -> torch.Tensor:
    """Cross-product matrix ``[v]x`` (..., 3, 3) of ``v`` (..., 3)."""
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], dim=-1).reshape(v.shape + (3,))


def axis_angle_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula. ``aa`` (..., 3) -> ``R`` (..., 3, 3); exact and smooth at 0."""
    theta2 = (aa * aa).sum(-1, keepdim=True).unsqueeze(-1)  # (..., 1, 1)
    theta = theta2.clamp_min(_EPS * _EPS).sqrt()
    small = theta2 < 1e-8
    # sin(t)/t and (1-cos t)/t^2 with their Taylor series near zero.
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / theta2.clamp_min(_EPS))
    k = _skew(aa)
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand(k.shape)
    return eye + a * k + b * (k @ k)


def matrix_to_quaternion(R: torch.Tensor) -> torch.Tensor:
    """``R`` (..., 3, 3) -> unit quaternion ``(w, x, y, z)`` (..., 4) with ``w >= 0``.

    Uses the numerically best of the four Shepperd candidates for each matrix.
    """
    m = R.reshape(R.shape[:-2] + (9,))
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = m.unbind(-1)
    cand = torch.stack(
        [
            torch.stack([1 + m00 + m11 + m22, m21 - m12, m02 - m20, m10 - m01], -1),
            torch.stack([m21 - m12, 1 + m00 - m11 - m22, m01 + m10, m02 + m20], -1),
            torch.stack([m02 - m20, m01 + m10, 1 - m00 + m11 - m22, m12 + m21], -1),
            torch.stack([m10 - m01, m02 + m20, m12 + m21, 1 - m00 - m11 + m22], -1),
        ],
        dim=-2,
    )  # (..., 4, 4): row i is 4*q_i*q scaled; diagonal entry is 4*q_i^2
    diag = torch.stack([cand[..., i, i] for i in range(4)], -1)
    best = diag.argmax(-1, keepdim=True)
    row = torch.gather(cand, -2, best.unsqueeze(-1).expand(best.shape[:-1] + (1, 4))).squeeze(-2)
    q = row / (2.0 * torch.gather(diag, -1, best).clamp_min(_EPS).sqrt())
    q = F.normalize(q, dim=-1)
    return torch.where(q[..., :1] < 0, -q, q)


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Quaternion ``(w, x, y, z)`` (..., 4), not necessarily unit -> ``R`` (..., 3, 3)."""
    w, x, y, z = F.normalize(q, dim=-1).unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(q.shape[:-1] + (3, 3))


def quaternion_to_axis_angle(q: torch.Tensor) -> torch.Tensor:
    """Quaternion (..., 4) -> axis-angle (..., 3) with angle in ``[0, pi]``."""
    q = F.normalize(q, dim=-1)
    q = torch.where(q[..., :1] < 0, -q, q)
    xyz = q[..., 1:]
    s = xyz.norm(dim=-1, keepdim=True)
    angle = 2.0 * torch.atan2(s, q[..., :1])
    # angle / sin(angle/2), with its limit 2 (+ angle^2/12) near zero.
    small = s < 1e-6
    scale = torch.where(small, 2.0 + angle * angle / 12.0, angle / s.clamp_min(_EPS))
    return xyz * scale


def matrix_to_axis_angle(R: torch.Tensor) -> torch.Tensor:
    """``R`` (..., 3, 3) -> axis-angle (..., 3), angle in ``[0, pi]``."""
    return quaternion_to_axis_angle(matrix_to_quaternion(R))


def rot6d_to_matrix(r6: torch.Tensor) -> torch.Tensor:
    """6D (..., 6) -> ``R`` (..., 3, 3) by Gram-Schmidt on the two column vectors."""
    a1, a2 = r6[..., :3], r6[..., 3:]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rot6d(R: torch.Tensor) -> torch.Tensor:
    """``R`` (..., 3, 3) -> 6D (..., 6): the first two columns, concatenated."""
    return torch.cat([R[..., :, 0], R[..., :, 1]], dim=-1)


def project_to_so3(M: torch.Tensor) -> torch.Tensor:
    """Nearest rotation (Frobenius norm) to each matrix ``M`` (..., 3, 3), via SVD."""
    U, _, Vh = torch.linalg.svd(M)
    d = torch.det(U @ Vh)
    fix = torch.ones(M.shape[:-2] + (3,), dtype=M.dtype, device=M.device)
    fix[..., 2] = d
    return U @ torch.diag_embed(fix) @ Vh


def rotation_between(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Smallest rotation ``R`` (..., 3, 3) with ``R @ a/|a| = b/|b|``; ``a, b`` (..., 3).

    For opposite vectors the axis is any vector perpendicular to ``a``.
    """
    a = F.normalize(a, dim=-1)
    b = F.normalize(b, dim=-1)
    c = (a * b).sum(-1, keepdim=True)
    axis = torch.cross(a, b, dim=-1)
    # Opposite vectors: rotate by pi about an axis perpendicular to a.
    helper = torch.where(
        a[..., :1].abs() < 0.9,
        torch.tensor([1.0, 0.0, 0.0], dtype=a.dtype, device=a.device).expand_as(a),
        torch.tensor([0.0, 1.0, 0.0], dtype=a.dtype, device=a.device).expand_as(a),
    )
    perp = F.normalize(torch.cross(a, helper, dim=-1), dim=-1)
    k = _skew(axis)
    eye = torch.eye(3, dtype=a.dtype, device=a.device).expand(k.shape)
    general = eye + k + (k @ k) / (1.0 + c).clamp_min(_EPS).unsqueeze(-1)
    flip = 2.0 * perp.unsqueeze(-1) * perp.unsqueeze(-2) - eye
    return torch.where((c < -1 + 1e-6).unsqueeze(-1), flip, general)


def geodesic_angle(R1: torch.Tensor, R2: torch.Tensor) -> torch.Tensor:
    """Angle (...,) in radians of the rotation ``R1^T R2``; ``R1, R2`` (..., 3, 3)."""
    tr = (R1 * R2).sum((-2, -1))
    return torch.acos(((tr - 1.0) / 2.0).clamp(-1.0, 1.0))
