"""Camera adaptation (PoseDA's global alignment): fit a camera distribution to the target's 2D.

With the poses fixed, the ranges of ``CameraDistribution``'s ``elevation_deg``, ``roll_deg``,
``distance_m`` and its focal length (``focal_px`` or ``fov_deg``, whichever the starting
distribution has) are searched by the cross-entropy method for the smallest Fréchet distance
(``posesynth.adapt.frechet``) between the projected poses' normalised 2D and the target's.
Each range is searched as its centre and half-width, within ``BOUNDS``; every other key
(azimuth, image size, lens, jitter) stays as it is.  Every candidate sees the same poses through
cameras drawn from the same seed (common random numbers), so candidates differ only by their
ranges, and the search is deterministic under its seed.

Focal length and distance change normalised 2D only through perspective and the lens (and the
distance through keeping the body in frame), so they are fitted loosely; elevation and roll
change it most.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from posesynth.adapt.frechet import frechet_2d_gaussians, gaussian, normalised_2d
from posesynth.adapt.views import Bodies, view_coords
from posesynth.cameras import CameraDistribution

# key -> (centre lo, centre hi, widest half-width, lowest value of the range, highest)
BOUNDS: dict[str, tuple[float, float, float, float, float]] = {
    "elevation_deg": (-80.0, 80.0, 30.0, -89.0, 89.0),
    "roll_deg": (-30.0, 30.0, 30.0, -60.0, 60.0),
    "distance_m": (1.0, 40.0, 20.0, 0.5, 60.0),
    "focal_px": (100.0, 20000.0, 5000.0, 50.0, 30000.0),
    "fov_deg": (5.0, 120.0, 40.0, 2.0, 150.0),
}


@dataclass(frozen=True)
class CameraSearch:
    """The cross-entropy method's sizes (the adapt recipe's ``[cameras]``)."""

    population: int  # candidates per iteration
    elites: int  # the best this many set the next iteration's distribution
    iterations: int


@dataclass(frozen=True)
class CameraFit:
    distribution: CameraDistribution  # the best found (the start if nothing beat it)
    before: float  # the distance with the starting distribution
    after: float  # with the fitted one
    history: tuple[float, ...]  # the best distance after each iteration


def fitted_keys(dist: CameraDistribution) -> tuple[str, ...]:
    return ("elevation_deg", "roll_deg", "distance_m", "focal_px" if dist.focal_px is not None else "fov_deg")


def to_vector(dist: CameraDistribution) -> np.ndarray:
    """(2 k,) centre and half-width of each fitted range."""
    out = []
    for key in fitted_keys(dist):
        lo, hi = getattr(dist, key)
        out += [(lo + hi) / 2, (hi - lo) / 2]
    return np.array(out)


def from_vector(dist: CameraDistribution, v: np.ndarray) -> CameraDistribution:
    """``dist`` with the fitted ranges of ``v`` (centre, half-width pairs), held within ``BOUNDS``."""
    ranges = {}
    for i, key in enumerate(fitted_keys(dist)):
        c_lo, c_hi, widest, lo, hi = BOUNDS[key]
        centre, half = float(np.clip(v[2 * i], c_lo, c_hi)), float(np.clip(v[2 * i + 1], 0.0, widest))
        ranges[key] = (max(lo, centre - half), min(hi, centre + half))
    return replace(dist, **ranges)


def initial_spread(dist: CameraDistribution) -> np.ndarray:
    """(2 k,) the first iteration's standard deviation of each centre and half-width."""
    out = []
    for key, (centre, _) in zip(fitted_keys(dist), to_vector(dist).reshape(-1, 2)):
        if key in ("elevation_deg", "roll_deg"):
            out += [15.0 if key == "elevation_deg" else 5.0, 5.0]
        else:
            out += [0.3 * abs(centre), 0.15 * abs(centre)]
    return np.array(out)


def fit_cameras(objective: Callable[[CameraDistribution], float], start: CameraDistribution,
                search: CameraSearch, seed: int, log: Callable[[str], None] | None = None) -> CameraFit:
    """The cross-entropy method from ``start``: ``objective(dist)`` is the distance to minimise
    (deterministic for a given ``dist``)."""
    rng = np.random.default_rng(seed)
    mean, std = to_vector(start), initial_spread(start)
    floor = 0.02 * std
    before = best_value = objective(start)
    best, history = start, []
    for it in range(search.iterations):
        candidates = [from_vector(start, mean + std * rng.standard_normal(len(mean))) for _ in range(search.population)]
        values = np.array([objective(c) for c in candidates])
        order = np.argsort(values, kind="stable")[: search.elites]
        elite = np.stack([to_vector(candidates[i]) for i in order])
        mean, std = elite.mean(0), np.maximum(elite.std(0), floor)
        if values[order[0]] < best_value:
            best, best_value = candidates[order[0]], float(values[order[0]])
        history.append(best_value)
        if log:
            log(f"cameras: iteration {it + 1}/{search.iterations}, best Fréchet distance {best_value:.4g}")
    return CameraFit(best, before, best_value, tuple(history))


def camera_objective(bodies: Bodies, target: np.ndarray, layout: str, seed: int) -> Callable[[CameraDistribution], float]:
    """``dist`` -> the Fréchet distance between ``bodies`` seen through cameras of ``dist``
    (drawn from ``seed``, the same draws for every ``dist``) and the target's normalised camera
    coordinates (N, J, 2) of set ``layout``."""
    reference = gaussian(normalised_2d(target, layout))

    @torch.no_grad()
    def objective(dist: CameraDistribution) -> float:
        coords = view_coords(bodies, dist, torch.Generator().manual_seed(seed))
        return frechet_2d_gaussians(gaussian(normalised_2d(coords, layout)), reference)

    return objective
