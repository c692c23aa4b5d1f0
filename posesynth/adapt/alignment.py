"""Global alignment (PoseDA's): the camera distribution and the body prior fitted to the target's 2D.

With the generator fixed, the chosen ranges of the camera distribution (``adapt.cameras``) and
the proportions of the betas prior (``adapt.bodies``) are searched by the cross-entropy method
(``adapt.search``).  ``fit_alignment`` searches both together for the smallest Fréchet distance
(``adapt.frechet``) between the generated poses' normalised 2D and the target's
(``align.cameras_by = "frechet"``); ``fit_by_view`` (the default) fits the cameras first by a
regressor's readings of the view (``ReadingObjective``, ``adapt.viewpoint``), where view and
pose do not stand in for each other, then the bodies with those cameras: by the same regressor's
readings of the body's proportions (``align.bodies_by = "readings"``, the default) or by the
Fréchet distance (``"frechet"``).

``AlignmentObjective`` gives every candidate the same poses, the same standard-normal body draws
(turned into betas by the candidate's prior) and the same camera draws (common random numbers),
so candidates differ only by what is fitted, and the search is deterministic under its seed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from posesynth.adapt import cameras as camera_space
from posesynth.adapt.bodies import BodySpace
from posesynth.adapt.frechet import frechet_2d_gaussians, gaussian, normalised_2d
from posesynth.adapt.search import SearchSizes, cross_entropy
from posesynth.adapt.viewpoint import BODY_READINGS, VIEW_READINGS, ViewRegressor, reading_distance
from posesynth.adapt.views import pose_bodies, view_coords
from posesynth.body_model import BodyModel
from posesynth.body_prior import BetasPrior
from posesynth.cameras import CameraDistribution


@dataclass(frozen=True)
class Alignment:
    """What the global alignment fits: the camera distribution and the betas prior."""

    cameras: CameraDistribution
    betas_prior: BetasPrior

    def to_dict(self) -> dict[str, Any]:
        return {"camera": self.cameras.to_dict(), "betas_prior": self.betas_prior.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Alignment:
        return cls(CameraDistribution.from_dict(d["camera"]), BetasPrior.from_dict(d["betas_prior"]))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Alignment) and self.to_dict() == other.to_dict()


@dataclass(frozen=True)
class AlignmentFit:
    alignment: Alignment  # the best found (the start if nothing beat it)
    before: float  # the distance with the start
    after: float  # with the fitted one
    history: tuple[float, ...]  # the best distance after each iteration


@dataclass(frozen=True)
class AlignmentSpace:
    """What is searched from ``start``: the camera ranges ``camera_keys`` and, when ``bodies`` is
    given, the proportions of the betas prior.  A vector is the cameras' part, then the bodies'."""

    start: Alignment
    camera_keys: tuple[str, ...]
    bodies: BodySpace | None

    @classmethod
    def make(cls, start: Alignment, camera_ranges: Sequence[str], fit_bodies: bool, body: BodyModel) -> AlignmentSpace:
        keys = camera_space.camera_keys(start.cameras, camera_ranges)
        return cls(start, keys, BodySpace.for_body(start.betas_prior, body) if fit_bodies else None)

    def to_vector(self, a: Alignment) -> np.ndarray:
        bodies = self.bodies.to_vector(a.betas_prior) if self.bodies else np.zeros(0)
        return np.concatenate([camera_space.to_vector(a.cameras, self.camera_keys), bodies])

    def from_vector(self, v: np.ndarray) -> Alignment:
        n = 2 * len(self.camera_keys)
        cams = camera_space.from_vector(self.start.cameras, v[:n], self.camera_keys)
        return Alignment(cams, self.bodies.from_vector(v[n:]) if self.bodies else self.start.betas_prior)

    def spread(self) -> np.ndarray:
        bodies = self.bodies.spread() if self.bodies else np.zeros(0)
        return np.concatenate([camera_space.initial_spread(self.start.cameras, self.camera_keys), bodies])

    def clip(self, v: np.ndarray) -> np.ndarray:
        return self.to_vector(self.from_vector(v))


class AlignmentObjective:
    """``alignment`` -> the Fréchet distance between poses ``rotmats`` (B, 24, 3, 3), on bodies
    of the alignment's prior from the standard-normal draws ``normal`` (B, K), seen through cameras
    of its distribution (drawn from ``seed``, the same draws every time), and the target's
    normalised camera coordinates ``target`` (N, J, 2) of keypoint set ``layout``."""

    def __init__(self, rotmats: torch.Tensor, normal: torch.Tensor, body: BodyModel, layout: str,
                 target: np.ndarray, seed: int) -> None:
        self.rotmats, self.normal, self.body, self.layout, self.seed = rotmats, normal, body, layout, seed
        self.reference = gaussian(normalised_2d(target, layout))

    @torch.no_grad()
    def coords(self, alignment: Alignment) -> torch.Tensor:
        """The poses' normalised camera coordinates (B, J, 2) with ``alignment``."""
        betas = alignment.betas_prior.from_normal(self.normal)
        bodies = pose_bodies(self.rotmats, betas.to(self.rotmats.device), self.body, self.layout)
        return view_coords(bodies, alignment.cameras, torch.Generator().manual_seed(self.seed))

    def __call__(self, alignment: Alignment) -> float:
        return frechet_2d_gaussians(gaussian(normalised_2d(self.coords(alignment), self.layout)), self.reference)


class ReadingObjective:
    """``alignment`` -> the distance (degrees, percent) between a ``ViewRegressor``'s readings
    ``names`` of the poses of ``poses`` (an ``AlignmentObjective``) with ``alignment`` and its
    readings of the target's normalised 2D ``target`` (N, J, 2) (``viewpoint.reading_distance``)."""

    def __init__(self, poses: AlignmentObjective, regressor: ViewRegressor, target: np.ndarray,
                 names: tuple[str, ...] = VIEW_READINGS) -> None:
        self.poses, self.regressor, self.names = poses, regressor, names
        self.reference = regressor.read(torch.as_tensor(target))

    def reading(self, names: tuple[str, ...]) -> ReadingObjective:
        """The same objective on the readings ``names``."""
        other = copy.copy(self)
        other.names = names
        return other

    def __call__(self, alignment: Alignment) -> float:
        return reading_distance(self.regressor.read(self.poses.coords(alignment)), self.reference, self.names)


def fit_alignment(objective: Callable[[Alignment], float], space: AlignmentSpace, sizes: SearchSizes, seed: int,
                  log: Callable[[str], None] | None = None, what: str = "Fréchet distance") -> AlignmentFit:
    """The cross-entropy search of ``objective`` (its values named ``what`` in the log) over
    ``space`` (the start when it fits nothing)."""
    if not space.camera_keys and space.bodies is None:
        value = objective(space.start)
        return AlignmentFit(space.start, value, value, ())
    result = cross_entropy(lambda v: objective(space.from_vector(v)), space.to_vector(space.start), space.spread(),
                           space.clip, sizes, seed, log, what)
    best = space.start if result.after >= result.before else space.from_vector(result.best)
    return AlignmentFit(best, result.before, result.after, result.history)


def fit_by_view(view: ReadingObjective, frechet: AlignmentObjective, space: AlignmentSpace, sizes: SearchSizes,
                seed: int, log: Callable[[str], None] | None = None, bodies_by: str = "readings") -> AlignmentFit:
    """Cameras by the view readings, then bodies with those cameras by the body readings
    (``bodies_by = "readings"``) or the Fréchet distance (``"frechet"``).  ``before`` and ``after``
    are Fréchet distances; ``history`` is the body search's."""
    cameras = fit_alignment(view.reading(VIEW_READINGS), replace(space, bodies=None), sizes, seed, log,
                            "view distance (deg)").alignment.cameras
    if log:
        log("align: cameras by view: elevation_deg [{:.3g}, {:.3g}], roll_deg [{:.3g}, {:.3g}]".format(
            *cameras.elevation_deg, *cameras.roll_deg))
    rest = replace(space, start=replace(space.start, cameras=cameras), camera_keys=())
    if bodies_by == "readings" and rest.bodies is not None:
        found = fit_alignment(view.reading(BODY_READINGS), rest, sizes, seed + 1, log, "body distance (%)")
        return AlignmentFit(found.alignment, frechet(space.start), frechet(found.alignment), found.history)
    fit = fit_alignment(frechet, rest, sizes, seed + 1, log)
    return replace(fit, before=frechet(space.start))
