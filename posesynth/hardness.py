"""Hardness feedback: keep the candidate poses a reference lifter gets wrong (``augment.hardness``).

PoseAug (Gong et al., CVPR 2021) trains its augmentor against the lifter being trained.  posesynth
writes stores for *other* trainers, so it does the same offline, by importance resampling: a
reference lifter trained on real poses (``posesynth lift train`` on a store of the pool's poses,
named by ``augment.hardness_lifter``) scores how hard each candidate sample is, and ``sample``
keeps ``n`` of ``2 n`` candidates, drawn without replacement with probability proportional to
``error ** hardness`` (Gumbel top-k).  ``hardness = 0`` is off; 1 keeps poses in proportion to the
reference lifter's error; larger values keep the hardest.  Every candidate is still a pose of the
source (the discriminator's and the plausibility checks' poses), so the kept ones stay human.

The score of a candidate: the reference lifter's MPJPE on its root-relative keypoints, seen
through the first view of cameras drawn from the run's camera distribution (from the block's
``augment`` generator: the cameras the store records are drawn afterwards, as without hardness).
"""

from __future__ import annotations

from pathlib import Path

import torch

from posesynth.body_model import BodyModel
from posesynth.cameras import CameraDistribution, project, sample_cameras
from posesynth.kinematics import forward_kinematics
from posesynth.keypoint_sets import compute_keypoints
from posesynth.metrics import mpjpe

CANDIDATES_PER_SAMPLE = 2


class HardnessSelector:
    """Scores candidates with a reference lifter and keeps the hard ones (see the module doc)."""

    def __init__(self, lifter_path: str | Path, exponent: float, body: BodyModel, cameras: CameraDistribution) -> None:
        from posesynth.lifting.checkpoint import load_lifter
        from posesynth.lifting.features import root_weights

        self.lifter = load_lifter(lifter_path)
        self.exponent = float(exponent)
        self.body, self.cameras = body, cameras
        self.root = root_weights(self.lifter.kset)

    @torch.no_grad()
    def errors(self, rotmats: torch.Tensor, betas: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(B,) the reference lifter's MPJPE (m) on poses (B, 24, 3, 3) on bodies (B, K)."""
        from posesynth.lifting.features import lifter_batch

        global_rotmats, joints = forward_kinematics(rotmats, self.body.rest_joints(betas))
        points = compute_keypoints([self.lifter.kset.name], self.body, global_rotmats, joints, betas)
        cams = sample_cameras(self.cameras, joints, generator, joints.device)
        pixels, camera = project(points[self.lifter.kset.name], cams)
        K = cams.K[:, 0].cpu().float()
        features, _, target = lifter_batch(pixels[:, 0].cpu().float(), camera[:, 0].cpu().float(), K, self.root)
        return mpjpe(self.lifter.predict_features(features), target)

    def select(self, rotmats: torch.Tensor, betas: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        """Indices (n,) of the candidates to keep, in candidate order; ``len(rotmats)`` >= ``n``."""
        error = self.errors(rotmats, betas, generator).double().clamp_min(1e-6)
        uniform = torch.rand(len(error), generator=generator, dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
        gumbel = -torch.log(-torch.log(uniform))
        keys = self.exponent * torch.log(error) + gumbel
        return keys.topk(n).indices.sort().values
