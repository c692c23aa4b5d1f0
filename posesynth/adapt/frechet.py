"""The 2D distance between two sets of poses: a Fréchet distance on normalised 2D keypoints.

Each pose's 2D keypoints (normalised camera coordinates, (J, 2)) are centred on the root keypoint
and divided by their RMS distance to it, as the lifters normalise them
(``posesynth.lifting.features.lifter_features``, without the root's position), so the distance
judges pose and view, not where the person is in the image or how large.  Each set's flattened
(2 J) vectors are fitted with a Gaussian and the distance is the Fréchet (FID) formula,
``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` (``metrics.frechet_gaussians``, the one
behind ``evaluate``'s FID), in squared normalised units.  The
normalisation leaves the covariances singular (the root keypoint is always at 0, the scale is
fixed), so ``EPS`` is added to their diagonals, which changes the distance by at most ~1e-6.
"""

from __future__ import annotations

import numpy as np
import torch

from posesynth.keypoint_sets import KEYPOINT_SETS
from posesynth.lifting.features import lifter_features, root_weights
from posesynth.metrics import frechet_gaussians, gaussian_fit

EPS = 1e-8


def normalised_2d(coords: torch.Tensor | np.ndarray, layout: str) -> torch.Tensor:
    """Normalised camera coordinates (B, J, 2) of keypoint set ``layout`` -> root-centred,
    unit-RMS-scale vectors (B, 2 J); differentiable."""
    coords = torch.as_tensor(coords)
    return lifter_features(coords, root_weights(KEYPOINT_SETS[layout]))[:, :-2]


def gaussian(x: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of vectors (N, D), in float64."""
    return gaussian_fit(np.asarray(torch.as_tensor(x).detach().cpu()))


def frechet_2d_gaussians(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """The Fréchet distance of two Gaussian fits (mean, covariance) of normalised 2D."""
    return max(frechet_gaussians(a, b, EPS), 0.0)


def frechet_2d(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray, layout: str) -> float:
    """The Fréchet distance between normalised camera coordinates ``a`` (N, J, 2) and ``b``
    (M, J, 2) of keypoint set ``layout`` (see the module doc)."""
    return frechet_2d_gaussians(gaussian(normalised_2d(a, layout)), gaussian(normalised_2d(b, layout)))
