"""The body part of the global alignment: the betas prior's proportions as a search vector.

Normalised 2D is blind to the body's size (stature, beta 0) and girth (beta 1 moves no joint), so
what is fitted is the mean of each segment's own beta (``body_range.SEGMENTS``: thigh, shank,
upper arm, forearm, shoulder and hip width, pelvis to neck, neck to head) and one factor on
their standard deviations (a target of a few people is narrower than the prior).  The vector is
``(S + 1,)``: the S means, then the factor.

Each mean is held where its segment alone stays within ``body_range.PROPORTION_LIMITS`` (the
adult range, written down with its sources there), on the body model's linear slope at the
template; the factor within ``SPREAD_FACTOR``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from posesynth.adapt.errors import AdaptError
from posesynth.body_model import BodyModel
from posesynth.body_prior import BetasPrior
from posesynth.body_range import PROPORTION_LIMITS, SEGMENTS, segment_lengths

PROPORTION_BETAS = tuple(s[2] for s in SEGMENTS.values())
SPREAD_FACTOR = (0.1, 1.5)


@dataclass(frozen=True)
class BodySpace:
    """The body part of the search: from the ``start`` prior, within ``lo``/``hi`` (S,) of the means."""

    start: BetasPrior
    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def for_body(cls, start: BetasPrior, body: BodyModel) -> BodySpace:
        if len(start.mean) <= max(PROPORTION_BETAS) or body.num_betas <= max(PROPORTION_BETAS):
            raise AdaptError(f"align.bodies: {body.identity}: fitting body proportions needs the 10 named shape "
                             "directions of posesynth's body model (and a betas prior of 10)")
        unit = torch.zeros(1 + len(PROPORTION_BETAS), body.num_betas, dtype=body.dtype, device=body.device)
        for i, beta in enumerate(PROPORTION_BETAS):
            unit[1 + i, beta] = 1.0
        lengths = segment_lengths(body.rest_joints(unit)).double().cpu()
        slope = torch.diagonal(lengths[1:] / lengths[:1] - 1.0).numpy()  # (S,) relative change per unit beta
        limits = np.array([PROPORTION_LIMITS[name] for name in SEGMENTS])
        return cls(start, (limits[:, 0] - 1.0) / slope, (limits[:, 1] - 1.0) / slope)

    def to_vector(self, prior: BetasPrior) -> np.ndarray:
        """(S + 1,) ``prior``'s proportion means and its spread factor against ``start``."""
        idx = list(PROPORTION_BETAS)
        factor = float((prior.std[idx] / self.start.std[idx]).mean())
        return np.append(prior.mean[idx].double().numpy(), factor)

    def from_vector(self, v: np.ndarray) -> BetasPrior:
        """``start`` with the proportion means and spread of ``v``, held within the bounds."""
        idx = list(PROPORTION_BETAS)
        mean, std = self.start.mean.clone(), self.start.std.clone()
        mean[idx] = torch.as_tensor(np.clip(v[:-1], self.lo, self.hi), dtype=mean.dtype)
        std[idx] = std[idx] * float(np.clip(v[-1], *SPREAD_FACTOR))
        return BetasPrior(mean, std, self.start.clip)

    def spread(self) -> np.ndarray:
        """(S + 1,) the first iteration's standard deviations: a unit beta per mean, 0.25 on the factor."""
        return np.append(np.ones(len(PROPORTION_BETAS)), 0.25)
