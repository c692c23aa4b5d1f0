"""Is a pose anatomically plausible?  Joint limits derived from the training pool.

A pose is implausible when any of these holds:

- ``range``: a joint's local rotation (axis-angle, per component) lies outside the
  range seen in the training poses that pass the other checks, widened by a margin (10 % of
  the range plus 5°);
- ``knee``: a knee bent the wrong way (hyperextended by more than 15°);
- ``elbow``: an elbow bent the wrong way (by more than 25°: elbows hyperextend a little,
  and retargeted twist adds noise to the hinge axis);
- ``head``: the head turned more than 90° from the chest (yaw of head relative to spine3).

Hinge directions are SMPL's: knees flex about +x; the left elbow about -y and the
right elbow about +y (rotation axes in the parent's rest frame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from posesynth.errors import PosesynthError
from posesynth.kinematics import yaw_angle
from posesynth.rotations import matrix_to_axis_angle
from posesynth.skeleton import JOINT_INDEX, SMPL_JOINT_NAMES, SMPL_PARENTS

_J = JOINT_INDEX
KNEE_TOLERANCE = math.radians(15.0)
ELBOW_TOLERANCE = math.radians(25.0)  # elbows hyperextend a little more, and carry the rig's twist noise
HEAD_TURN_LIMIT = math.radians(90.0)
CHECKS = ("range", "knee", "elbow", "head")
LIMIT_FREE_CHECKS = ("knee", "elbow", "head")


class PlausibilityError(PosesynthError, ValueError):
    """Poses that no joint limits can be derived from."""


@dataclass(frozen=True)
class JointLimits:
    low: torch.Tensor  # (24, 3) axis-angle component minimum (radians); row 0 unused
    high: torch.Tensor  # (24, 3)

    @classmethod
    def from_poses(cls, rotmats: torch.Tensor, margin: float = 0.1, pad_deg: float = 5.0) -> JointLimits:
        """Limits from training poses (N, 24, 3, 3): the range of those that pass the knee, elbow
        and head checks, widened.  A pose those checks refuse is left out, so that it cannot set a
        joint's range for every other: in the mocap pool, 127 of the default split's 59,126
        training frames (knees folded past the thigh at full flexion, elbows bent backwards:
        retargeting artefacts) had opened the right knee's and ankle's ranges to about ±180° and
        let the right hip swing 152° backwards, against 63° for every other frame."""
        aa = matrix_to_axis_angle(rotmats.double())
        kept = aa[~fails_limit_free_checks(rotmats, aa).any(0)]
        if not len(kept):
            raise PlausibilityError(f"none of the {len(aa)} poses passes the knee, elbow and head checks: "
                                    f"no joint limits can be derived from them")
        lo, hi = kept.min(0).values, kept.max(0).values
        pad = margin * (hi - lo) + math.radians(pad_deg)
        return cls((lo - pad).float(), (hi + pad).float())

    def to_dict(self) -> dict[str, list]:
        return {"low": self.low.tolist(), "high": self.high.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, list]) -> JointLimits:
        return cls(torch.tensor(d["low"]), torch.tensor(d["high"]))


def out_of_range(aa: torch.Tensor, limits: JointLimits) -> torch.Tensor:
    """Which joints of axis-angle poses (N, 24, 3) have a component outside ``limits``: (N, 24)
    bool, never the root (the ``range`` check, per joint)."""
    out = ((aa < limits.low.to(aa)) | (aa > limits.high.to(aa))).any(-1)
    out[:, 0] = False
    return out


def fails_limit_free_checks(rotmats: torch.Tensor, aa: torch.Tensor) -> torch.Tensor:
    """Which poses (N, 24, 3, 3), with their axis-angle (N, 24, 3), fail each of
    ``LIMIT_FREE_CHECKS`` (the checks that need no joint limits): (3, N) bool."""
    knee = (aa[:, [_J["left_knee"], _J["right_knee"]], 0] < -KNEE_TOLERANCE).any(-1)
    elbow = (aa[:, _J["left_elbow"], 1] > ELBOW_TOLERANCE) | (aa[:, _J["right_elbow"], 1] < -ELBOW_TOLERANCE)
    # The head's rotation relative to the chest (spine3) is the neck's and the head's local ones.
    head = yaw_angle(rotmats[:, _J["neck"]] @ rotmats[:, _J["head"]]).abs() > HEAD_TURN_LIMIT
    return torch.stack([knee, elbow, head])


def implausible(rotmats: torch.Tensor, limits: JointLimits) -> dict[str, torch.Tensor]:
    """Which poses (N, 24, 3, 3) fail each check: {check: (N,) bool}, plus "any"."""
    aa = matrix_to_axis_angle(rotmats.float())  # (N, 24, 3)
    out = {"range": out_of_range(aa, limits).any(-1),
           **dict(zip(LIMIT_FREE_CHECKS, fails_limit_free_checks(rotmats, aa)))}
    out["any"] = torch.stack([out[c] for c in CHECKS]).any(0)
    return out


def turned_within_limits(own: torch.Tensor, turned: torch.Tensor, limits: JointLimits) -> torch.Tensor:
    """Poses ``turned`` (N, 24, 3, 3) from their ``own`` rotations (N, 24, 3, 3) and held to
    ``limits``: a joint the turn takes out of range keeps its own rotation, and a pose that
    ``implausible`` still refuses keeps all of its own.  A pose is never less plausible than its own."""
    outside = out_of_range(matrix_to_axis_angle(turned.float()), limits)
    turned = torch.where(outside[..., None, None], own, turned)
    refused = implausible(turned, limits)["any"]
    return torch.where(refused[:, None, None, None], own, turned)


def limit_penalty(rotmats: torch.Tensor, limits: JointLimits) -> torch.Tensor:
    """How far poses (N, 24, 3, 3) break the ``range``, ``knee`` and ``elbow`` checks (radians,
    summed over the joints): (N,), 0 for a pose that passes them, differentiable (a training
    term, where ``implausible`` is the test)."""
    aa = matrix_to_axis_angle(rotmats)
    body = aa[:, 1:]
    out = ((limits.low[1:].to(aa) - body).clamp_min(0) + (body - limits.high[1:].to(aa)).clamp_min(0)).sum((-1, -2))
    out = out + (-KNEE_TOLERANCE - aa[:, [_J["left_knee"], _J["right_knee"]], 0]).clamp_min(0).sum(-1)
    out = out + (aa[:, _J["left_elbow"], 1] - ELBOW_TOLERANCE).clamp_min(0)
    return out + (-ELBOW_TOLERANCE - aa[:, _J["right_elbow"], 1]).clamp_min(0)


def bone_length_asymmetry(joints: torch.Tensor) -> float:
    """Largest |left - right| bone length difference (metres) over paired bones, (N, 24, 3)."""
    worst = 0.0
    for j, name in enumerate(SMPL_JOINT_NAMES):
        if name.startswith("left_") and SMPL_PARENTS[j] >= 0:
            r = _J["right_" + name[5:]]
            left = (joints[:, j] - joints[:, SMPL_PARENTS[j]]).norm(dim=-1)
            right = (joints[:, r] - joints[:, SMPL_PARENTS[r]]).norm(dim=-1)
            worst = max(worst, float((left - right).abs().max()))
    return worst
