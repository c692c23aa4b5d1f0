"""Geometry the lifters are judged by: Procrustes alignment and reprojection.

- ``procrustes_align(pred, target)``: the similarity transform (rotation, scale, translation)
  that best maps ``pred`` onto ``target``, applied to ``pred`` (for PA-MPJPE).
- ``solve_translation(points, coords)``: the camera-frame translation that puts a root-relative
  pose (B, J, 3) where it best reprojects onto normalised 2D (B, J, 2): linear least squares on
  ``x (Z + tz) = X + tx``, ``y (Z + tz) = Y + ty``; differentiable.
- ``reproject(points, coords)``: the pose so placed, projected: (B, J, 2) normalised coordinates.
"""

from __future__ import annotations

import torch


def procrustes_align(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``pred`` (B, J, 3) moved by the best similarity transform onto ``target`` (B, J, 3)."""
    mu_p, mu_t = pred.mean(1, keepdim=True), target.mean(1, keepdim=True)
    p, t = pred - mu_p, target - mu_t
    U, S, Vh = torch.linalg.svd(p.transpose(1, 2) @ t)  # (B, 3, 3): p^T t = U S Vh
    sign = torch.sign(torch.linalg.det(U @ Vh))
    D = torch.ones_like(S)
    D[:, -1] = sign
    R = U @ torch.diag_embed(D) @ Vh  # p @ R ~ t
    scale = (S * D).sum(-1) / p.square().sum((1, 2)).clamp_min(1e-12)
    return scale[:, None, None] * p @ R + mu_t


def solve_translation(points: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Root-relative camera-frame points (B, J, 3) and their normalised 2D (B, J, 2) -> t (B, 3)."""
    x, y = coords[..., 0], coords[..., 1]
    ones, zeros = torch.ones_like(x), torch.zeros_like(x)
    A = torch.cat([torch.stack([ones, zeros, -x], -1), torch.stack([zeros, ones, -y], -1)], dim=1)  # (B, 2J, 3)
    b = torch.cat([x * points[..., 2] - points[..., 0], y * points[..., 2] - points[..., 1]], dim=1)  # (B, 2J)
    AtA = A.transpose(1, 2) @ A
    Atb = (A.transpose(1, 2) @ b.unsqueeze(-1)).squeeze(-1)
    return torch.linalg.solve(AtA, Atb)


def reproject(points: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """``points`` (B, J, 3) placed by ``solve_translation`` and projected -> (B, J, 2)."""
    placed = points + solve_translation(points, coords)[:, None]
    return placed[..., :2] / placed[..., 2:].clamp_min(1e-3)
