"""Bodies beyond the training pool's: a wide, decorrelated prior over proportions (``sample`` augmentation).

The pool has seven fitted bodies on two rig conventions; the people and datasets a lifter meets
have other statures, other proportions and other joint conventions (where a rig puts the
shoulder and hip joints).  ``WideBodyRange`` draws bodies spread *uniformly and independently*
over a box of measurements between rest-pose joint centres, then solves the body model's betas
that give them (PoseAug's bone-length augmentation, expressed in the body model's shape space so
that the mesh, the joints and every keypoint set stay consistent):

- ``scale``: the whole body (``stature`` direction), relative to the template;
- each segment (``SEGMENTS``): its length relative to the template's, *after* scaling.

The limits (``PROPORTION_LIMITS``), written down with their reasons:

- ``scale`` 0.85-1.15: adult statures of about 1.45-1.95 m around the 1.70 m template (1st
  percentile of women to 99th of men in the US Army's ANSUR II survey, Gordon et al. 2014, rounded
  outward).
- lengths (thigh, shank, upper arm, pelvis to neck, neck to head) 0.70-1.30 and the forearm
  0.60-1.30: adult segment-to-stature ratios vary by roughly +-10% (ANSUR II); the rest is
  joint *conventions*: where a rig places wrist, neck and head joints.  Measured on the bodies
  ``prepare`` fits to the pool's rigs: HDM05's forearms are 0.65-0.82 of the template's, Bandai
  Namco's pelvis-to-neck 0.78.
- widths (shoulder and hip joints) 0.60-1.40: shoulder joint width is 0.25-0.27 m on Bandai
  Namco's rig, 0.37-0.43 m on HDM05's and 0.34 m on SMPL's (the template); hip joint width
  0.12-0.19 m.

Girth (beta 1) moves no joint; it is drawn uniformly in [-2, 2] so meshes vary too.  A body
model without posesynth's ten named shape directions is refused (``WideBodyRange.for_body``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from posesynth.body_model import BodyModel
from posesynth.skeleton import JOINT_INDEX

# segment name -> (joint a, joint b, the beta that lengthens it)
SEGMENTS: dict[str, tuple[str, str, int]] = {
    "thigh": ("left_hip", "left_knee", 2),
    "shank": ("left_knee", "left_ankle", 3),
    "upper_arm": ("left_shoulder", "left_elbow", 4),
    "forearm": ("left_elbow", "left_wrist", 5),
    "shoulder_width": ("left_shoulder", "right_shoulder", 6),
    "hip_width": ("left_hip", "right_hip", 7),
    "pelvis_to_neck": ("pelvis", "neck", 8),
    "neck_to_head": ("neck", "head", 9),
}
PROPORTION_LIMITS: dict[str, tuple[float, float]] = {
    "scale": (0.85, 1.15),
    "thigh": (0.70, 1.30), "shank": (0.70, 1.30), "upper_arm": (0.70, 1.30), "forearm": (0.60, 1.30),
    "pelvis_to_neck": (0.70, 1.30), "neck_to_head": (0.70, 1.30),
    "shoulder_width": (0.60, 1.40), "hip_width": (0.60, 1.40),
}
GIRTH_LIMITS = (-2.0, 2.0)
STATURE_BETA, GIRTH_BETA = 0, 1


def rest_height(rest_joints: torch.Tensor) -> torch.Tensor:
    """(B, 24, 3) rest joints -> (B,) the head joint's height above the left ankle's, metres."""
    return rest_joints[:, JOINT_INDEX["head"], 1] - rest_joints[:, JOINT_INDEX["left_ankle"], 1]


def leg_length(rest_joints: torch.Tensor) -> torch.Tensor:
    """(B, 24, 3) rest joints -> (B,) the left thigh and shank, hip to knee to ankle, metres: the
    segments every rig puts at the same anatomical joints (shoulder, neck and pelvis placement
    is where rig conventions differ)."""
    hip, knee, ankle = (rest_joints[:, JOINT_INDEX[name]] for name in ("left_hip", "left_knee", "left_ankle"))
    return (hip - knee).norm(dim=-1) + (knee - ankle).norm(dim=-1)


def segment_lengths(rest_joints: torch.Tensor) -> torch.Tensor:
    """(B, 24, 3) rest joints -> (B, S) lengths in metres, in ``SEGMENTS`` order."""
    a = [JOINT_INDEX[s[0]] for s in SEGMENTS.values()]
    b = [JOINT_INDEX[s[1]] for s in SEGMENTS.values()]
    return (rest_joints[:, a] - rest_joints[:, b]).norm(dim=-1)


@dataclass(frozen=True)
class WideBodyRange:
    """Uniform draws over ``PROPORTION_LIMITS``, turned into betas of ``body``.

    Segment lengths are linear in betas up to a bone's change of direction; each segment's own
    beta is solved by two Newton steps, which meets every drawn proportion to within 1% (the
    loosest is pelvis to neck, which the neck-to-head beta moves too).
    """

    body: BodyModel
    template: torch.Tensor  # (S,) the template's segment lengths, metres
    scale_per_beta: float  # relative change of the body's size per unit of the stature beta

    @classmethod
    def for_body(cls, body: BodyModel) -> WideBodyRange:
        if body.num_betas <= max(s[2] for s in SEGMENTS.values()):
            raise ValueError(f"{body.identity}: the wide body range needs the 10 named shape directions of "
                             f"posesynth's body model; this model has {body.num_betas} betas")
        unit = torch.zeros(2, body.num_betas, dtype=body.dtype, device=body.device)
        unit[1, STATURE_BETA] = 1.0
        joints = body.rest_joints(unit)
        height = rest_height(joints)
        return cls(body, segment_lengths(joints[:1])[0], float(height[1] / height[0]) - 1.0)

    def lengths(self, betas: torch.Tensor) -> torch.Tensor:
        """(B, K) betas -> (B, S) segment lengths in metres."""
        return segment_lengths(self.body.rest_joints(betas))

    def scaled_to(self, betas: torch.Tensor, size: torch.Tensor,
                  measure: Callable[[torch.Tensor], torch.Tensor] = rest_height) -> torch.Tensor:
        """``betas`` (B, K) with the stature beta moved so that ``measure`` of the rest joints
        (``rest_height``, ``leg_length``: (B, 24, 3) -> (B,)) is ``size`` (B,) metres, the other
        betas kept (three Newton steps, finite-difference slopes)."""
        betas, eps = betas.clone(), 1e-2
        step = torch.zeros_like(betas)
        step[:, STATURE_BETA] = eps
        for _ in range(3):
            now = measure(self.body.rest_joints(betas)).to(betas)
            slope = (measure(self.body.rest_joints(betas + step)).to(betas) - now) / eps
            betas[:, STATURE_BETA] += (size.to(betas) - now) / slope
        return betas

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """(n, K) betas; ``n * (S + 2)`` uniforms drawn from ``generator`` (CPU) in one call."""
        S = len(SEGMENTS)
        names = ("scale", *SEGMENTS)
        lo = torch.tensor([PROPORTION_LIMITS[k][0] for k in names], dtype=torch.float64)
        hi = torch.tensor([PROPORTION_LIMITS[k][1] for k in names], dtype=torch.float64)
        u = torch.rand(n, S + 2, generator=generator, dtype=torch.float64)
        draws = lo + (hi - lo) * u[:, : S + 1]
        scale, proportions = draws[:, 0], draws[:, 1:]
        betas = torch.zeros(n, self.body.num_betas, dtype=torch.float64)
        betas[:, GIRTH_BETA] = GIRTH_LIMITS[0] + (GIRTH_LIMITS[1] - GIRTH_LIMITS[0]) * u[:, S + 1]
        betas[:, STATURE_BETA] = (scale - 1.0) / self.scale_per_beta
        betas = betas.to(self.body.device, self.body.dtype)
        target = (scale[:, None] * proportions).to(betas) * self.template  # (n, S) metres
        columns = [s[2] for s in SEGMENTS.values()]
        for _ in range(2):
            current = self.lengths(betas)
            betas[:, columns] += (target - current) / self._slopes(betas, current, columns)
        return betas

    def _slopes(self, betas: torch.Tensor, lengths: torch.Tensor, columns: list[int],
                eps: float = 1e-2) -> torch.Tensor:
        """(n, S): d length_s / d beta_{columns[s]} at ``betas``, whose ``lengths`` are given
        (finite differences)."""
        step = torch.zeros_like(betas)
        step[:, columns] = eps
        return (self.lengths(betas + step) - lengths) / eps
