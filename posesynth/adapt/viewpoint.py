"""Learnt view and body statistics: the camera's elevation and roll, and the body's proportions, read from each 2D pose.

In 2D, view and pose stand in for each other, so a distance between whole 2D distributions
(``frechet``) lets a camera search bend the view to make up for poses the source lacks
(measured: docs/adapt.md).  ``ViewRegressor`` reads the view alone: a small MLP trained on the
source's own poses, on bodies of every adult proportion (the wide body range), seen through
``PROBE`` cameras far wider than any domain's, to regress each normalised 2D pose's camera
elevation and roll (degrees; ``camera_angles`` of the drawn camera) and its body's proportions
(``body_proportions``: each ``body_range.SEGMENTS`` length against the template's, the body's
size taken out, in percent).  Trained on every pose the source makes, every body and every
view, it learns what the view and the body each do to a pose's 2D whatever the other two are
(as far as the source's poses reach: a target pose the source never makes is read less well).

A reading is ``(B, R)``: ``VIEW_READINGS`` then ``BODY_READINGS``.  ``reading_distance`` then
compares *readings with readings*: the regressor's readings of the target's 2D against its
readings of generated poses through a candidate camera distribution and body prior, per reading
the mean absolute difference of their quantiles (the 1D Wasserstein distance, in degrees or
percent), summed over the chosen readings.  A regressor's bias (it pulls readings towards the
middle of its training range) is the same on both sides, so it cancels.

Shapes: B poses, J keypoints of the target's set.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from posesynth.adapt.frechet import normalised_2d
from posesynth.adapt.views import pose_bodies, seen
from posesynth.body_model import BodyModel
from posesynth.body_range import SEGMENTS, STATURE_BETA, WideBodyRange
from posesynth.cameras import CameraDistribution, Cameras
from posesynth.gan.networks import mlp
from posesynth.keypoint_sets import KEYPOINT_SETS

PROBE = {"elevation_deg": (-45.0, 85.0), "roll_deg": (-45.0, 45.0)}  # the regressor's training views
VIEW_READINGS = ("elevation_deg", "roll_deg")
BODY_READINGS = tuple(f"{name}_pct" for name in SEGMENTS)
READINGS = VIEW_READINGS + BODY_READINGS
# the regressor's outputs are readings / SCALE: 45 degrees, 30 percent (the wide body range's
# half-width is 30-40 percent)
SCALE = torch.tensor([45.0] * len(VIEW_READINGS) + [30.0] * len(BODY_READINGS))
QUANTILES = torch.linspace(0.02, 0.98, 49, dtype=torch.float64)
WIDTH = 256
BATCH = 512


def rotation_angles(R: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) camera rotations -> (B, 2) each camera's elevation (above the horizontal, looking
    down) and roll, radians; differentiable.  ``R``'s rows are the camera's axes in world
    coordinates (+y up): the optical axis's height gives the elevation, the right and down axes'
    heights the roll (``cameras.look_at_rotation``)."""
    elevation = torch.asin((-R[:, 2, 1]).clamp(-1.0, 1.0))
    roll = torch.atan2(R[:, 0, 1], -R[:, 1, 1])
    return torch.stack([elevation, roll], -1)


def camera_angles(cams: Cameras) -> torch.Tensor:
    """(B * V, 2) each camera's elevation and roll (``rotation_angles``), degrees."""
    return torch.rad2deg(rotation_angles(cams.R.flatten(0, 1).double()))


def body_proportions(betas: torch.Tensor, bodies: WideBodyRange) -> torch.Tensor:
    """(B, K) betas -> (B, S) each segment's length against the template's after the body's size
    (its stature beta) is taken out, in percent (100: the template's proportion)."""
    scale = 1.0 + bodies.scale_per_beta * betas[:, STATURE_BETA:STATURE_BETA + 1]
    return 100.0 * bodies.lengths(betas) / (scale * bodies.template)


class ViewRegressor(torch.nn.Module):
    """Normalised 2D (B, J, 2) of keypoint set ``layout`` -> (B, R) readings (``READINGS``):
    elevation and roll in degrees, then the body's proportions in percent."""

    def __init__(self, layout: str) -> None:
        super().__init__()
        self.layout = layout
        self.net = mlp([2 * len(KEYPOINT_SETS[layout].joint_names), WIDTH, WIDTH, WIDTH, len(READINGS)])
        self.register_buffer("scale", SCALE.clone())
        self.register_buffer("offset", torch.tensor([0.0] * len(VIEW_READINGS) + [100.0] * len(BODY_READINGS)))

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return self.offset + self.scale * self.net(normalised_2d(coords, self.layout).float())

    @torch.no_grad()
    def read(self, coords: torch.Tensor, batch: int = 8192) -> torch.Tensor:
        """(N, J, 2) -> (N, R) in float64, in batches."""
        self.eval()
        return torch.cat([self(coords[i:i + batch]) for i in range(0, len(coords), batch)]).double()


def probe_cameras(start: CameraDistribution) -> CameraDistribution:
    """``start`` with the regressor's wide elevation and roll ranges."""
    return replace(start, **PROBE)


def train_view_regressor(rotmats: torch.Tensor, body: BodyModel, layout: str, start: CameraDistribution,
                         steps: int, seed: int) -> ViewRegressor:
    """A ``ViewRegressor`` trained on poses ``rotmats`` (N, 24, 3, 3), each step ``BATCH`` of them
    on fresh bodies of the wide body range (``body_range.WideBodyRange``: every adult proportion
    and rig convention, so that the readings do not depend on the source's bodies) through fresh
    ``probe_cameras(start)`` cameras; seeded."""
    rng = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    cams_dist, bodies = probe_cameras(start), WideBodyRange.for_body(body)
    model = ViewRegressor(layout).to(rotmats.device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        rows = torch.randint(len(rotmats), (BATCH,), generator=rng)
        with torch.no_grad():
            betas = bodies.sample(BATCH, rng).to(rotmats.device)
            coords, cams, _ = seen(pose_bodies(rotmats[rows], betas, body, layout), cams_dist, rng)
            truth = torch.cat([camera_angles(cams), body_proportions(betas, bodies).double()], -1).float()
        loss = (model(coords) - truth).div(model.scale).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
    return model.eval().requires_grad_(False)


def quantiles(readings: torch.Tensor) -> torch.Tensor:
    """(N, R) -> (Q, R) the ``QUANTILES`` of each reading."""
    return torch.quantile(readings, QUANTILES.to(readings), dim=0)


def reading_distance(a: torch.Tensor, b: torch.Tensor, names: tuple[str, ...] = VIEW_READINGS) -> float:
    """The summed 1D Wasserstein distances (degrees, percent) between two sets of (N, R)
    readings, over the readings ``names``."""
    columns = [READINGS.index(name) for name in names]
    return float((quantiles(a[:, columns]) - quantiles(b[:, columns])).abs().mean(0).sum())
