"""The body shapes (SMPL betas) poses are put on: a clipped Gaussian per shape dimension.

``BetasPrior`` is the one type for it.  ``body_model_prior`` is SMPL's own prior (N(0, 1),
clipped at 3 standard deviations: ``sample.betas = "prior"``); ``fit_betas_prior`` centres one
on the bodies fitted to a training store's subjects (the GAN's ``[betas]`` recipe, kept in its
checkpoint, and the recombination baseline's bodies).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from posesynth.config import RecipeError
from posesynth.store import open_store
from posesynth.stores.training import KIND, smpl_path, split_rows

BETAS_PRIORS = ("fitted", "standard")


@dataclass(frozen=True)
class BetasPrior:
    """The bodies poses are put on: ``betas = mean + std * clamp(N(0, 1), -clip, clip)`` per
    dimension.  The GAN's training poses real and generated poses on them (shape augmentation)
    and ``sample`` draws its bodies from them."""

    mean: torch.Tensor  # (K,)
    std: torch.Tensor  # (K,)
    clip: float

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """(n, K) betas; the normal draws come from ``generator`` on the CPU."""
        return self.from_normal(torch.randn(n, len(self.mean), generator=generator))

    def from_normal(self, normal: torch.Tensor) -> torch.Tensor:
        """Standard normal draws (n, K) -> the betas (n, K) they give under this prior."""
        return self.mean.to(normal) + self.std.to(normal) * normal.clamp(-self.clip, self.clip)

    @classmethod
    def standard(cls, num_betas: int, std: float, clip: float) -> BetasPrior:
        """N(0, std^2) per dimension, clipped at ``clip`` standard deviations."""
        return cls(torch.zeros(num_betas), torch.full((num_betas,), float(std)), float(clip))

    def to_dict(self) -> dict[str, list[float] | float]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "clip": float(self.clip)}

    @classmethod
    def from_dict(cls, d: dict) -> BetasPrior:
        return cls(torch.tensor(d["mean"], dtype=torch.float32), torch.tensor(d["std"], dtype=torch.float32),
                   float(d["clip"]))


def fit_betas_prior(path: str | Path, kind: str = "fitted", num_betas: int = 10, std: float = 1.0,
                    clip: float = 2.5, split: str = "train") -> BetasPrior:
    """``standard``: N(0, std^2) per dimension.  ``fitted``: centred on the mean of the distinct
    bodies of the store's ``split`` (each fitted subject counts once, however many frames it has),
    spread by their variance plus ``std^2`` of augmentation: bodies like the real ones, and
    between and around them."""
    if kind not in BETAS_PRIORS:
        raise RecipeError(f"betas prior (betas.prior) must be one of {BETAS_PRIORS}, got {kind!r}")
    if kind == "standard":
        return BetasPrior.standard(num_betas, std, clip)
    group = open_store(path, kind=KIND)
    keep = split_rows(group, split, path)
    bodies = np.unique(group[smpl_path("betas")][:][keep], axis=0)[:, :num_betas]
    bodies = np.pad(bodies, ((0, 0), (0, num_betas - bodies.shape[1])))
    return BetasPrior(torch.as_tensor(bodies.mean(0), dtype=torch.float32),
                      torch.as_tensor(np.sqrt(bodies.var(0) + std**2), dtype=torch.float32), float(clip))


def body_model_prior(num_betas: int) -> BetasPrior:
    """SMPL's own shape prior: N(0, 1) per dimension, clipped at 3 standard deviations."""
    return BetasPrior.standard(num_betas, 1.0, 3.0)
