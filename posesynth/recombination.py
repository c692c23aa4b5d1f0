"""An EvoSkeleton-style baseline: new poses by recombining and mutating training poses.

Li et al. (CVPR 2020) grow a pose set by crossover (swapping body parts between two
poses) and mutation (perturbing local rotations), keeping only plausible children.
Here a child takes each limb (left/right arm, left/right leg) from a second random
parent with probability ``crossover``, every local rotation is perturbed by a random
rotation of angle ~ N(0, ``mutation_deg``), and implausible children are redrawn.

``RecombinationPoseSource`` makes it a pose source for ``sample`` (the downstream
benchmark's baseline (d)), with bodies drawn as the GAN's are (``fit_betas_prior``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from posesynth.augment import LIMB_JOINTS, joint_turns
from posesynth.body_prior import BetasPrior, fit_betas_prior
from posesynth.stores.training_poses import load_training_poses
from posesynth.plausibility import JointLimits, implausible
from posesynth.pose_source import PoseBatch, PoseSourceError



def _children(rotmats: torch.Tensor, n: int, generator: torch.Generator, crossover: float,
              mutation_deg: float) -> torch.Tensor:
    a = torch.randint(len(rotmats), (n,), generator=generator)
    b = torch.randint(len(rotmats), (n,), generator=generator)
    child = rotmats[a].clone()
    for joints in LIMB_JOINTS.values():
        take = torch.rand(n, generator=generator) < crossover
        idx = list(joints)
        child[take.nonzero().squeeze(-1)[:, None], idx] = rotmats[b[take]][:, idx]
    return child @ joint_turns(n, mutation_deg, generator, child.dtype)


def recombine(rotmats: torch.Tensor, n: int, limits: JointLimits, generator: torch.Generator,
              crossover: float = 0.5, mutation_deg: float = 5.0, max_rounds: int = 50) -> torch.Tensor:
    """``n`` plausible children (n, 24, 3, 3) of the poses ``rotmats`` (N, 24, 3, 3)."""
    kept: list[torch.Tensor] = []
    have = 0
    for _ in range(max_rounds):
        batch = _children(rotmats, max(1024, 2 * (n - have)), generator, crossover, mutation_deg)
        good = batch[~implausible(batch, limits)["any"]]
        kept.append(good)
        have += len(good)
        if have >= n:
            return torch.cat(kept)[:n]
    raise RuntimeError(f"recombination kept only {have} plausible poses of {n} in {max_rounds} rounds")


class RecombinationPoseSource:
    """Recombined training poses of a ``prepare`` store (a ``posesynth.pose_source.PoseSource``):
    parents from its ``split`` (their files: ``training_files``), joint limits from the same
    poses, bodies from ``betas_prior`` (default: fitted to the split's bodies, as the GAN's
    default); no labels."""

    def __init__(self, path: str | Path, split: str = "train", betas_prior: BetasPrior | None = None,
                 crossover: float = 0.5, mutation_deg: float = 5.0) -> None:
        self.path = Path(path)
        data = load_training_poses(path, split=split, balance="frame")
        self.rotmats = data.rotmats.float()
        self.joint_limits = JointLimits.from_poses(data.rotmats)
        self.training_files = data.files
        self.betas_prior = betas_prior or fit_betas_prior(path, split=split)
        self.crossover, self.mutation_deg = crossover, mutation_deg
        self.body_model: str | None = None
        self._identity = f"recombination({self.path.name}:{split}, crossover {crossover}, mutation {mutation_deg} deg)"

    @property
    def label_names(self) -> tuple[str, ...]:
        return ()

    @property
    def identity(self) -> str:
        return self._identity

    def sample(self, n: int, generator: torch.Generator, label: int | None = None,
               device: torch.device | str = "cpu") -> PoseBatch:
        """``n`` recombined poses (n, 24, 3, 3) and bodies (n, K); no labels (-1)."""
        if label is not None:
            raise PoseSourceError(f"{self.identity}: recombined poses have no labels")
        rotmats = recombine(self.rotmats, n, self.joint_limits, generator, self.crossover, self.mutation_deg)
        betas = self.betas_prior.sample(n, generator)
        return PoseBatch(rotmats.to(device), betas.to(device), torch.full((n,), -1, dtype=torch.int64, device=device))
