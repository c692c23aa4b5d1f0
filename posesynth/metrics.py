"""Pose-set metrics: how generated poses compare with real ones.

All metrics work on *canonical joints*: the 24 joints of a pose posed on one fixed
body (the mean shape), centred on the pelvis, with the global yaw removed, so that
only the pose is compared (not the body, the heading or the position).  Distances
are MPJPE in metres (mean over joints of the Euclidean distance).

- ``nearest_mpjpe``: for every query pose, the MPJPE to the nearest reference pose.
  Exact among the ``k`` nearest by Euclidean distance over all joints (a shortlist
  found with one matrix product per chunk).
- ``coverage``: summary of nearest distances (mean, median, fraction under 50/100 mm).
- ``apd``: average pairwise MPJPE of a set (diversity).
- ``frechet_distance``: Fréchet distance of Gaussian fits of the flattened joints (FID
  on joint positions, in mm²).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import linalg

from posesynth.kinematics import forward_kinematics, remove_yaw


def canonical_joints(rotmats: torch.Tensor, rest_joints: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    """Local rotations (N, 24, 3, 3) on rest joints (24, 3) -> pelvis-centred joints (N, 24, 3)."""
    out = []
    for part in rotmats.split(chunk):
        part = part.clone()
        part[:, 0] = remove_yaw(part[:, 0])
        _, joints = forward_kinematics(part, rest_joints.to(part.dtype))
        out.append(joints - joints[:, :1])
    return torch.cat(out)


def mpjpe(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """MPJPE (...,) between joint sets (..., J, 3)."""
    return (a - b).norm(dim=-1).mean(-1)


def nearest_mpjpe(queries: torch.Tensor, refs: torch.Tensor, k: int = 8, chunk: int = 2048) -> torch.Tensor:
    """For each query (Q, J, 3), the MPJPE (Q,) to its nearest reference (R, J, 3)."""
    q_flat = queries.reshape(len(queries), -1).float()
    r_flat = refs.reshape(len(refs), -1).float()
    r_sq = (r_flat * r_flat).sum(-1)
    k = min(k, len(refs))
    out = []
    for start in range(0, len(q_flat), chunk):
        q = q_flat[start:start + chunk]
        d2 = (q * q).sum(-1, keepdim=True) - 2.0 * q @ r_flat.T + r_sq  # squared L2, (q, R)
        cand = d2.topk(k, dim=-1, largest=False).indices  # (q, k)
        exact = mpjpe(queries[start:start + chunk, None].float(), refs[cand].float())  # (q, k)
        out.append(exact.min(-1).values)
    return torch.cat(out)


def coverage(distances: torch.Tensor) -> dict[str, float]:
    """Summary of nearest-neighbour distances (metres in, millimetres and fractions out)."""
    d = distances.double() * 1000.0
    return {
        "mean_mm": float(d.mean()),
        "median_mm": float(np.median(d.numpy())),
        "under_50mm": float((d < 50).double().mean()),
        "under_100mm": float((d < 100).double().mean()),
    }


def apd(joints: torch.Tensor, max_poses: int = 2000, generator: torch.Generator | None = None) -> float:
    """Average pairwise MPJPE (mm) over (up to ``max_poses`` random) poses (N, J, 3)."""
    if len(joints) > max_poses:
        joints = joints[torch.randperm(len(joints), generator=generator)[:max_poses]]
    total, count = 0.0, 0
    for part in joints.split(256):
        d = mpjpe(part[:, None].double(), joints[None].double())  # (p, N)
        total += float(d.sum())
        count += d.numel() - len(part)  # leave out each pose's distance to itself
    return 1000.0 * total / count


def gaussian_fit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of vectors (N, D), float64."""
    x = np.asarray(x, dtype=np.float64)
    return x.mean(0), np.cov(x, rowvar=False)


def frechet_gaussians(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], ridge: float) -> float:
    """The Fréchet distance ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` of two Gaussians
    (mean, covariance); ``ridge`` is added to both diagonals, which keeps the square root defined
    when a coordinate never varies."""
    (mu_a, cov_a), (mu_b, cov_b) = a, b
    eye = ridge * np.eye(len(mu_a))
    cov_a, cov_b = cov_a + eye, cov_b + eye
    root = linalg.sqrtm(cov_a @ cov_b)
    root = root.real if np.iscomplexobj(root) else root
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2.0 * root))


def frechet_distance(real: torch.Tensor, generated: torch.Tensor) -> float:
    """Fréchet distance (mm²) between Gaussian fits of flattened joints (N, J, 3)."""
    a = real.reshape(len(real), -1).double().numpy() * 1000.0
    b = generated.reshape(len(generated), -1).double().numpy() * 1000.0
    return frechet_gaussians(gaussian_fit(a), gaussian_fit(b), ridge=1e-6)
