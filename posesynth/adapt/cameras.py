"""The camera part of the global alignment: a camera distribution's ranges as a search vector.

Each fitted range of ``CameraDistribution`` (``CAMERA_RANGES``: ``elevation_deg``, ``roll_deg``,
``distance_m`` and the focal length, ``focal_px`` or ``fov_deg`` whichever the distribution has)
is searched as its centre and half-width, within ``BOUNDS``; every other key (azimuth, image
size, lens, jitter) stays as it is.

Normalised 2D is blind to the person's size, so distance and focal length reach it only through
perspective and the lens: a search that may move them bends the 2D the way a different body or
pose would, and finds cameras that are not the target's (measured: docs/adapt.md).  The default
recipe fits elevation and roll only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from posesynth.adapt.errors import AdaptError
from posesynth.cameras import CameraDistribution

# key -> (centre lo, centre hi, widest half-width, lowest value of the range, highest)
BOUNDS: dict[str, tuple[float, float, float, float, float]] = {
    "elevation_deg": (-80.0, 80.0, 30.0, -89.0, 89.0),
    "roll_deg": (-30.0, 30.0, 30.0, -60.0, 60.0),
    "distance_m": (1.0, 40.0, 20.0, 0.5, 60.0),
    "focal_px": (100.0, 20000.0, 5000.0, 50.0, 30000.0),
    "fov_deg": (5.0, 120.0, 40.0, 2.0, 150.0),
}
CAMERA_RANGES = tuple(BOUNDS)


def camera_keys(dist: CameraDistribution, names: Sequence[str]) -> tuple[str, ...]:
    """The ranges ``names`` (``align.camera_ranges``) of ``dist`` to fit, checked."""
    for name in names:
        if name not in BOUNDS:
            raise AdaptError(f"align.camera_ranges: {name!r} is not one of {', '.join(CAMERA_RANGES)}")
        if getattr(dist, name) is None:
            other = "fov_deg" if name == "focal_px" else "focal_px"
            raise AdaptError(f"align.camera_ranges: the start cameras (align.start) have no {name}; "
                             f"they give {other}")
    return tuple(dict.fromkeys(names))


def to_vector(dist: CameraDistribution, keys: Sequence[str]) -> np.ndarray:
    """(2 k,) centre and half-width of each range of ``keys``."""
    out = []
    for key in keys:
        lo, hi = getattr(dist, key)
        out += [(lo + hi) / 2, (hi - lo) / 2]
    return np.array(out, dtype=float)


def from_vector(dist: CameraDistribution, v: np.ndarray, keys: Sequence[str]) -> CameraDistribution:
    """``dist`` with the ranges of ``keys`` from ``v`` (centre, half-width pairs), held within ``BOUNDS``."""
    ranges = {}
    for i, key in enumerate(keys):
        c_lo, c_hi, widest, lo, hi = BOUNDS[key]
        centre, half = float(np.clip(v[2 * i], c_lo, c_hi)), float(np.clip(v[2 * i + 1], 0.0, widest))
        ranges[key] = (max(lo, centre - half), min(hi, centre + half))
    return replace(dist, **ranges)


def initial_spread(dist: CameraDistribution, keys: Sequence[str]) -> np.ndarray:
    """(2 k,) the first iteration's standard deviation of each centre and half-width."""
    out = []
    for key, (centre, _) in zip(keys, to_vector(dist, keys).reshape(-1, 2)):
        if key in ("elevation_deg", "roll_deg"):
            out += [15.0 if key == "elevation_deg" else 5.0, 5.0]
        else:
            out += [0.3 * abs(centre), 0.15 * abs(centre)]
    return np.array(out, dtype=float)
