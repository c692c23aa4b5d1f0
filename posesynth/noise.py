"""A detector-like noise model for 2D keypoints: per-joint Gaussian jitter, gross outliers and
left/right swaps.

For each view of each sample, with ``s = sqrt(w h)`` the size of the clean keypoints' bounding
box in pixels:

1. **swaps**: each left/right pair of the set (``left_x``/``right_x``) trades places with
   probability ``swap_prob``, independently per pair;
2. **jitter**: every keypoint moves by a Gaussian of per-coordinate standard deviation
   ``sigma_j * scale * s``;
3. **outliers**: with probability ``outlier_prob`` a keypoint is instead put uniformly in the
   disc of radius ``outlier_radius * s`` around its (possibly swapped) clean position.

``sigma_j`` are COCO's OKS sigmas (``COCO_SIGMAS``, the spread of human annotators, as a fraction
of the object scale).  With ``scale = 1`` the per-coordinate error is ``sigma_j * s``; since OKS
uses ``exp(-d^2 / (2 area (2 sigma)^2))`` and a person's segmentation area is roughly 0.5 to 0.6
of its box, this gives an expected OKS of roughly 0.8, about what a good top-down detector
reaches on a well-detected person.  Other sets take the sigma of the closest COCO keypoint by
name (``SIGMA_FROM``): torso and hip points the hips' (0.107), neck, thorax, collars and spine3
the shoulders' (0.079), hands the wrists', feet the ankles', the head joint and the head top the
ears' (0.035), Human3.6M's neck_nose the nose's.

Random numbers come from a CPU ``torch.Generator`` in one fixed order that depends only on the
shape ``(B, V, J)``: Gaussians (B, V, J, 2), outlier draws (B, V, J), outlier disc (B, V, J, 2),
swap draws (B, V, P) for the set's P pairs, all float32.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from posesynth.keypoint_sets import KeypointSet

COCO_SIGMAS: dict[str, float] = {
    "nose": 0.026, "left_eye": 0.025, "right_eye": 0.025, "left_ear": 0.035, "right_ear": 0.035,
    "left_shoulder": 0.079, "right_shoulder": 0.079, "left_elbow": 0.072, "right_elbow": 0.072,
    "left_wrist": 0.062, "right_wrist": 0.062, "left_hip": 0.107, "right_hip": 0.107,
    "left_knee": 0.087, "right_knee": 0.087, "left_ankle": 0.089, "right_ankle": 0.089,
}

# Keypoints of other sets -> the closest COCO keypoint (side prefixes are kept).
SIGMA_FROM: dict[str, str] = {
    "pelvis": "left_hip", "spine": "left_hip", "spine1": "left_hip", "spine2": "left_hip",
    "spine3": "left_shoulder", "neck": "left_shoulder", "thorax": "left_shoulder",
    "left_collar": "left_shoulder", "right_collar": "right_shoulder",
    "head": "left_ear", "head_top": "left_ear", "neck_nose": "nose",
    "left_hand": "left_wrist", "right_hand": "right_wrist", "left_foot": "left_ankle", "right_foot": "right_ankle",
}


def _check_prob(name: str, value: Any, hi: float = 1.0) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 <= value <= hi):
        raise ValueError(f"noise: {name} must be a number in [0, {hi}], got {value!r}")


@dataclass(frozen=True, kw_only=True)
class DetectorNoise:
    """Parameters of ``add_detector_noise``; ``sigmas`` overrides the per-keypoint sigma by name.

    Also the sampling recipe's ``[noise]`` table, its values kept as given (the store records
    them); the defaults are sample_default.toml's (tests/test_recipes.py holds them together)."""

    scale: float = 1.0  # jitter std = sigma_j * scale * bbox size
    outlier_prob: float = 0.01  # per keypoint
    outlier_radius: float = 0.5  # disc radius, fraction of the bbox size
    swap_prob: float = 0.01  # per left/right pair
    sigmas: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)) or not (
                math.isfinite(self.scale) and self.scale >= 0):
            raise ValueError(f"noise: scale must be a finite number >= 0, got {self.scale!r}")
        _check_prob("outlier_prob", self.outlier_prob)
        _check_prob("swap_prob", self.swap_prob)
        _check_prob("outlier_radius", self.outlier_radius, hi=10.0)
        if not isinstance(self.sigmas, Mapping):
            raise ValueError(f"noise: sigmas must be a table of keypoint name -> sigma, got {self.sigmas!r}")
        for name, sigma in self.sigmas.items():
            _check_prob(f"sigmas.{name}", sigma)


def keypoint_sigmas(keypoint_set: KeypointSet, noise: DetectorNoise | None = None) -> torch.Tensor:
    """(J,) float32 sigma per keypoint of the set: ``noise.sigmas``, else COCO's by name or mapped."""
    overrides = noise.sigmas if noise is not None else {}
    out = []
    for name in keypoint_set.joint_names:
        if name in overrides:
            out.append(overrides[name])
        elif name in COCO_SIGMAS:
            out.append(COCO_SIGMAS[name])
        elif name in SIGMA_FROM:
            out.append(COCO_SIGMAS[SIGMA_FROM[name]])
        else:
            raise ValueError(f"noise: no sigma for keypoint {name!r} of {keypoint_set.name}; "
                             "give one in the noise table's sigmas")
    return torch.tensor(out, dtype=torch.float32)


def add_detector_noise(pixels: torch.Tensor, keypoint_set: KeypointSet, noise: DetectorNoise,
                       generator: torch.Generator) -> torch.Tensor:
    """Detector-like noisy copy of clean 2D keypoints (see the module doc).

    Args:
        pixels: (B, V, J, 2) clean pixels, left untouched.
        keypoint_set: the set the J keypoints belong to (names give sigmas and left/right pairs).
        noise: the noise parameters.
        generator: a CPU ``torch.Generator``; the draws depend only on its state and (B, V, J).

    Returns:
        (B, V, J, 2) new tensor, same dtype and device as ``pixels``.
    """
    if pixels.dim() != 4 or pixels.shape[-1] != 2:
        raise ValueError(f"pixels must be (B, V, J, 2), got {tuple(pixels.shape)}")
    if pixels.shape[2] != len(keypoint_set):
        raise ValueError(f"pixels have {pixels.shape[2]} keypoints, {keypoint_set.name} has {len(keypoint_set)}")
    if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
        raise ValueError("generator must be a CPU torch.Generator (draws are made on the CPU)")
    B, V, J, _ = pixels.shape
    pairs = keypoint_set.mirror_pairs
    draws = _draws(generator, B, V, J, len(pairs))
    gauss, u_out, disc, u_swap = (d.to(pixels.device, pixels.dtype) for d in draws)
    clean = _swap(pixels, pairs, u_swap < noise.swap_prob)
    size = (pixels.amax(2) - pixels.amin(2)).prod(-1).clamp_min(0).sqrt()[..., None, None]  # (B, V, 1, 1)
    sigma = keypoint_sigmas(keypoint_set, noise).to(pixels.device, pixels.dtype)[:, None]
    jittered = clean + gauss * sigma * (noise.scale * size)
    radius = noise.outlier_radius * size[..., 0] * disc[..., 0].sqrt()
    angle = 2 * math.pi * disc[..., 1]
    outlier = clean + torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], -1)
    return torch.where((u_out < noise.outlier_prob).unsqueeze(-1), outlier, jittered)


def _draws(generator: torch.Generator, B: int, V: int, J: int, P: int) -> tuple[torch.Tensor, ...]:
    gauss = torch.randn((B, V, J, 2), generator=generator)
    u_out = torch.rand((B, V, J), generator=generator)
    disc = torch.rand((B, V, J, 2), generator=generator)
    u_swap = torch.rand((B, V, P), generator=generator)
    return gauss, u_out, disc, u_swap


def _swap(pixels: torch.Tensor, pairs: tuple[tuple[int, int], ...], swap: torch.Tensor) -> torch.Tensor:
    """Pixels (B, V, J, 2) with each pair p exchanged where ``swap[..., p]`` (B, V, P) is True."""
    if not pairs:
        return pixels
    left = torch.tensor([l for l, _ in pairs], device=pixels.device)
    right = torch.tensor([r for _, r in pairs], device=pixels.device)
    partner = torch.arange(pixels.shape[2], device=pixels.device).expand(pixels.shape[:3]).clone()
    partner[..., left] = torch.where(swap, right, left)
    partner[..., right] = torch.where(swap, left, right)
    return torch.gather(pixels, 2, partner.unsqueeze(-1).expand_as(pixels))
