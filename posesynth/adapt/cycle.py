"""The cycle's lifter: a regressor from normalised 2D to each keypoint's depth, trained on the lifted generator's poses.

Fitting one pose's 3D to one 2D view leaves its depth to the optimiser: any pose the generator
makes that projects the same way fits, and the fit keeps whichever the start reached.  A
regressor trained on many generated poses through many views learns, from the whole
distribution, which depth goes with which 2D (SPIN, ICCV 2019: a regressor and a per-example
optimisation in one loop, each improving the other; measured on a cross-source fold, a lifter
trained on the first lifting's poses lifts the target's 2D with 72 mm PA-MPJPE where the
lifting itself had 83: docs/adapt.md).  ``adapt`` therefore lifts the target twice
(``invert.cycle``): the first lifting's poses train a ``DepthRegressor``, whose depths of the
target's 2D then join the second lifting's loss (``inversion.Inverter``).  This closes the
issue's cycle: target 2D -> 3D (the regressor) -> 2D (the lifting's reprojection), and
generated 3D -> 2D -> 3D (the regressor's own training).

A pose's depth is in the units of its normalised 2D (``frechet.normalised_2d``): each
keypoint's camera-frame depth relative to the root, divided by the root's depth and the 2D's RMS
scale, so that on a distant camera it is the third coordinate of the same rotated, unit-scale
pose whose first two are the normalised 2D.

Shapes: B poses, J keypoints of the target's set.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from posesynth.adapt.frechet import normalised_2d
from posesynth.adapt.views import pose_bodies, seen
from posesynth.body_model import BodyModel
from posesynth.cameras import CameraDistribution
from posesynth.gan.checkpoint import GanPoseSource
from posesynth.gan.networks import mlp
from posesynth.keypoint_sets import KEYPOINT_SETS
from posesynth.lifting.features import rms_scale, root_of, root_weights

WIDTH = 512
BATCH = 512


def relative_depth(points: torch.Tensor, layout: str) -> torch.Tensor:
    """Camera-frame keypoints (B, J, 3) of keypoint set ``layout`` -> (B, J) each keypoint's depth
    in normalised units (see the module doc); differentiable."""
    weights = root_weights(KEYPOINT_SETS[layout]).to(points)
    root = root_of(points, weights)  # (B, 1, 3)
    coords = points[..., :2] / points[..., 2:]
    scale = rms_scale(coords - root_of(coords, weights))[:, None]
    return (points[..., 2] - root[..., 2]) / (root[..., 2] * scale)


def orthographic_depth(seen: torch.Tensor, layout: str) -> torch.Tensor:
    """Root-relative keypoints rotated into a camera's axes (B, J, 3), seen orthographically ->
    (B, J) each keypoint's depth in the units of their normalised 2D (the first two axes)."""
    weights = root_weights(KEYPOINT_SETS[layout]).to(seen)
    centred = seen - root_of(seen, weights)
    return centred[..., 2] / rms_scale(centred[..., :2])[:, None]


class DepthRegressor(torch.nn.Module):
    """Normalised 2D (B, J, 2) of keypoint set ``layout`` -> (B, J) relative depths."""

    def __init__(self, layout: str) -> None:
        super().__init__()
        self.layout = layout
        joints = len(KEYPOINT_SETS[layout].joint_names)
        self.net = mlp([2 * joints, WIDTH, WIDTH, WIDTH, joints])

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return self.net(normalised_2d(coords, self.layout).float())

    @torch.no_grad()
    def read(self, coords: torch.Tensor, batch: int = 8192) -> torch.Tensor:
        """(N, J, 2) -> (N, J), in batches."""
        self.eval()
        return torch.cat([self(coords[i:i + batch]) for i in range(0, len(coords), batch)])


def train_depth_regressor(source: GanPoseSource, body: BodyModel, layout: str, cameras: CameraDistribution,
                          steps: int, seed: int, device: torch.device,
                          progress: Callable[[int], None] | None = None) -> DepthRegressor:
    """A ``DepthRegressor`` trained for ``steps`` steps of ``BATCH`` of ``source``'s poses and
    bodies (its bank's and prior's: the first lifting's) through fresh cameras of ``cameras``
    (lens and all, as the target's pixels were seen); seeded; ``progress`` is called after each
    step with 1."""
    rng = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = DepthRegressor(layout).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        with torch.no_grad():
            batch = source.sample(BATCH, rng, device=device)
            coords, _, points = seen(pose_bodies(batch.rotmats, batch.betas, body, layout), cameras, rng)
            depth = relative_depth(points, layout).float()
        loss = (model(coords) - depth).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        if progress:
            progress(1)
    return model.eval().requires_grad_(False)
