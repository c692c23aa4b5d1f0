"""Sample-time augmentation: what the pool lacks but the world has, applied to any pose source.

The recipe's ``[augment]`` table (``posesynth/recipes/sample_default.toml``); every mechanism is off at
zero, and ``sample`` applies them per block, after the pose source and before forward kinematics:

- ``mirror``: the share of samples mirrored left to right (the body's sagittal plane): the flip
  augmentation of 3D pose training, for a pool whose one-sided actions (a right-hand grab, a
  left-foot kick) have no mirror twin;
- ``wide_bodies``: the share of samples put on a body drawn from ``body_range.WideBodyRange``
  (statures, proportions and joint conventions beyond the pool's few bodies) instead of the
  source's body;
- ``tilt``: the share of samples whose whole body is turned about a random horizontal axis by an
  angle uniform in ``tilt_deg`` (lying, falling, bending over, inverted); the body is then put on
  the floor as every sample is (``sampling.floor_translation``);
- ``crossover``: the share of samples that take one limb (an arm or a leg, its local rotations)
  from another sample of the same block: new combinations of parts (EvoSkeleton's crossover,
  applied to any source's poses);
- ``mutation``: the share of samples whose body joints are each turned by a small random rotation
  (a uniform axis, an angle normal with ``mutation_deg`` degrees of spread); a joint turned out of
  the source's joint limits keeps its rotation, and a pose the plausibility checks refuse keeps
  all of them (EvoSkeleton's mutation; PoseAug's bone-angle augmentation): poses between and
  beyond the source's, at the level of single joints;
- ``crouch``: the share of samples whose legs and spine are bent together: both hips flexed by an
  angle uniform in ``crouch_deg`` (each leg 70-100% of it), the knees further, the ankles by the
  difference (so a foot flat under an upright pelvis stays flat) and the torso leaning forward by
  up to half of it; held to the source's joint limits as a mutation is.  Squatting, crouching and
  kneeling, which a pool of walks and gestures lacks and single-joint turns do not reach;
- ``temperature``: a GAN checkpoint's latents drawn this many times wider (above 1: poses further
  from the training modes), implausible draws redrawn (``GanPoseSource.tempered``);
- ``hardness`` with ``hardness_lifter``: keep the candidates a reference lifter gets wrong
  (``posesynth.hardness``).

Determinism: every mechanism that is on draws a fixed number of numbers per row from the block's
``augment`` generator, in a fixed order, so the rows depend only on the seed and the block.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from posesynth.body_range import WideBodyRange
from posesynth.plausibility import JointLimits, turned_within_limits
from posesynth.rotations import axis_angle_to_matrix
from posesynth.skeleton import JOINT_INDEX, NUM_JOINTS, mirror_index

LIMB_JOINTS: dict[str, tuple[int, ...]] = {  # the joints whose local rotations a limb carries
    "left_arm": tuple(JOINT_INDEX[j] for j in ("left_shoulder", "left_elbow", "left_wrist", "left_hand")),
    "right_arm": tuple(JOINT_INDEX[j] for j in ("right_shoulder", "right_elbow", "right_wrist", "right_hand")),
    "left_leg": tuple(JOINT_INDEX[j] for j in ("left_hip", "left_knee", "left_ankle", "left_foot")),
    "right_leg": tuple(JOINT_INDEX[j] for j in ("right_hip", "right_knee", "right_ankle", "right_foot")),
}


@dataclass(frozen=True)
class Augmentation:
    """The ``[augment]`` recipe table, checked (the values: ``posesynth/recipes/sample_default.toml``)."""

    mirror: float  # share of samples mirrored left to right
    wide_bodies: float  # share of samples on a wide-range body
    tilt: float  # share of samples tilted by an angle in tilt_deg
    tilt_deg: list[float]  # [low, high] degrees
    crossover: float  # share of samples with one limb from another sample
    mutation: float  # share of samples with every body joint turned a little
    mutation_deg: float  # spread (degrees) of a mutation's turn angle, per joint
    crouch: float  # share of samples with hips, knees, ankles and spine bent together
    crouch_deg: list[float]  # [low, high] degrees of a crouch's hip flexion
    temperature: float  # a GAN checkpoint's latent scale
    hardness: float  # exponent of the reference lifter's error; 0 = off
    hardness_lifter: str  # the reference lifter's file ("" when hardness is 0)

    def __post_init__(self) -> None:
        for name in ("mirror", "wide_bodies", "tilt", "crossover", "mutation", "crouch"):
            _check_number(name, getattr(self, name), lambda v: 0.0 <= v <= 1.0, "a share between 0 and 1")
        _check_number("mutation_deg", self.mutation_deg, lambda v: 0.0 <= v <= 90.0, "degrees in [0, 90]")
        _check_number("temperature", self.temperature, lambda v: 0.0 < v <= 3.0, "a number in (0, 3]")
        _check_number("hardness", self.hardness, lambda v: 0.0 <= v <= 10.0, "a number in [0, 10]")
        if not isinstance(self.hardness_lifter, str) or (self.hardness and not self.hardness_lifter):
            raise ValueError(f"augment.hardness = {self.hardness} needs augment.hardness_lifter: the path of a "
                             f"lifter trained on real poses (posesynth lift train)")
        _check_degree_range("tilt_deg", self.tilt_deg, 180.0)
        _check_degree_range("crouch_deg", self.crouch_deg, 150.0)

    def apply(self, rotmats: torch.Tensor, betas: torch.Tensor, generator: torch.Generator,
              bodies: WideBodyRange | None, limits: JointLimits | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented copies of ``rotmats`` (B, 24, 3, 3) and ``betas`` (B, K); ``bodies`` is
        needed when ``wide_bodies`` is on, the source's joint ``limits`` when ``mutation`` is."""
        if self.mirror:
            rotmats = mirror_poses(rotmats, self.mirror, generator)
        if self.crossover:
            rotmats = cross_limbs(rotmats, self.crossover, generator)
        if self.mutation:
            if limits is None:
                raise ValueError("augment.mutation needs the pose source's joint limits")
            rotmats = mutate_joints(rotmats, self.mutation, self.mutation_deg, limits, generator)
        if self.crouch:
            if limits is None:
                raise ValueError("augment.crouch needs the pose source's joint limits")
            rotmats = crouch_poses(rotmats, self.crouch, self.crouch_deg, limits, generator)
        if self.tilt:
            rotmats = rotmats.clone()
            rotmats[:, 0] = tilt_bodies(rotmats[:, 0], self.tilt, self.tilt_deg, generator)
        if self.wide_bodies:
            if bodies is None:
                raise ValueError("augment.wide_bodies needs a WideBodyRange of the body model")
            take = torch.rand(len(betas), generator=generator) < self.wide_bodies
            wide = bodies.sample(len(betas), generator).to(betas)
            betas = torch.where(take.to(betas.device)[:, None], wide, betas)
        return rotmats, betas


def _check_number(name: str, value: Any, ok: Callable[[float], bool], expected: str) -> None:
    """ValueError naming ``augment.<name>`` unless ``value`` is a number (not a bool) that is ``ok``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok(value):
        raise ValueError(f"augment.{name} must be {expected}, got {value!r}")


def _check_degree_range(name: str, deg: Any, most: float) -> None:
    """ValueError naming ``augment.<name>`` unless ``deg`` is [low, high] with 0 <= low <= high <= most."""
    if not isinstance(deg, list) or len(deg) != 2 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in deg):
        raise ValueError(f"augment.{name} must be [low, high] in degrees, got {deg!r}")
    if not 0.0 <= deg[0] <= deg[1] <= most:
        raise ValueError(f"augment.{name} must be [low, high] degrees with 0 <= low <= high <= {most:g}, "
                         f"got {deg}")


# What a recipe without an [augment] table (a store written before it existed) means: nothing applied.
NO_AUGMENTATION = Augmentation(mirror=0.0, wide_bodies=0.0, tilt=0.0, tilt_deg=[0.0, 180.0], crossover=0.0,
                               mutation=0.0, mutation_deg=0.0, crouch=0.0, crouch_deg=[0.0, 150.0],
                               temperature=1.0, hardness=0.0, hardness_lifter="")

# The shares the default recipe turns on to reach beyond the pool; adapted checkpoints and the
# benchmarks' "no augmentation" baselines set every one of them to 0 (mutation_deg and crouch_deg are then unused).
POOL_AUGMENTATIONS = ("mirror", "wide_bodies", "tilt", "crossover", "mutation", "crouch")


def pool_augmentations_off() -> list[str]:
    """``--set`` overrides that turn ``POOL_AUGMENTATIONS`` off."""
    return [f"augment.{name}=0.0" for name in POOL_AUGMENTATIONS]


def tilt_bodies(global_orient: torch.Tensor, share: float, degrees: Sequence[float],
                generator: torch.Generator) -> torch.Tensor:
    """Global orientations (B, 3, 3), a ``share`` of them turned about a horizontal axis (uniform
    azimuth) by an angle uniform in ``degrees``; 3 uniforms per row from ``generator``."""
    u = torch.rand(len(global_orient), 3, generator=generator, dtype=torch.float64)
    azimuth = 2 * math.pi * u[:, 1]
    angle = torch.deg2rad(degrees[0] + (degrees[1] - degrees[0]) * u[:, 2]) * (u[:, 0] < share)
    axis = torch.stack([torch.cos(azimuth), torch.zeros_like(azimuth), torch.sin(azimuth)], -1)
    turn = axis_angle_to_matrix(axis * angle[:, None]).to(global_orient)
    return turn @ global_orient


def mirror_poses(rotmats: torch.Tensor, share: float, generator: torch.Generator) -> torch.Tensor:
    """Poses (B, 24, 3, 3), a ``share`` of them mirrored left to right: every local rotation
    reflected through the x = 0 plane (``F R F``, F = diag(-1, 1, 1)) and given to its joint's
    mirror twin, so that on a left/right-symmetric skeleton (the body model's, for any betas) the
    posed joints are the original's mirror image; 1 uniform per row from ``generator``."""
    take = (torch.rand(len(rotmats), generator=generator, dtype=torch.float64) < share).to(rotmats.device)
    f = torch.tensor([-1.0, 1.0, 1.0], dtype=rotmats.dtype, device=rotmats.device)
    mirrored = rotmats[:, list(mirror_index())] * (f[:, None] * f[None, :])  # (F R F)_ij = f_i R_ij f_j
    return torch.where(take[:, None, None, None], mirrored, rotmats)


def cross_limbs(rotmats: torch.Tensor, share: float, generator: torch.Generator) -> torch.Tensor:
    """Poses (B, 24, 3, 3), a ``share`` of them with one limb (uniform among ``LIMB_JOINTS``) taken
    from another row (uniform); 3 numbers per row from ``generator``."""
    B = len(rotmats)
    u = torch.rand(B, 2, generator=generator, dtype=torch.float64)
    partner = torch.randint(B, (B,), generator=generator)
    limb = (u[:, 1] * len(LIMB_JOINTS)).long().clamp(max=len(LIMB_JOINTS) - 1)
    take = u[:, 0] < share
    out = rotmats.clone()
    for k, joints in enumerate(LIMB_JOINTS.values()):
        rows = torch.nonzero(take & (limb == k)).squeeze(1)
        if len(rows):
            idx = list(joints)
            out[rows[:, None], idx] = rotmats[partner[rows].to(rotmats.device)][:, idx]
    return out


def joint_turns(n: int, degrees: float, generator: torch.Generator, dtype: torch.dtype,
                rows: torch.Tensor | None = None) -> torch.Tensor:
    """Random turns (n, 24, 3, 3) of every body joint, identity for the root: a uniform axis and
    an angle normal with ``degrees`` of spread; 24 * 4 normals per row from ``generator``.  Given
    ``rows`` (indices), only those rows' turns (len(rows), 24, 3, 3), from the same draws."""
    axis = torch.nn.functional.normalize(torch.randn(n, NUM_JOINTS, 3, generator=generator), dim=-1)
    angle = torch.randn(n, NUM_JOINTS, 1, generator=generator) * math.radians(degrees)
    angle[:, 0] = 0.0  # the global orientation is not turned
    turns = axis * angle
    return axis_angle_to_matrix((turns if rows is None else turns[rows]).to(dtype))


def mutate_joints(rotmats: torch.Tensor, share: float, degrees: float, limits: JointLimits,
                  generator: torch.Generator) -> torch.Tensor:
    """Poses (B, 24, 3, 3), a ``share`` of them with every body joint turned (``joint_turns``): a
    turn taking its joint out of ``limits`` is not made, and a pose that ``implausible`` refuses
    keeps its own rotations; 1 + 24 * 4 numbers per row from ``generator``."""
    take = (torch.rand(len(rotmats), generator=generator, dtype=torch.float64) < share).to(rotmats.device)
    rows = torch.nonzero(take).squeeze(1)  # only these are turned and checked
    own = rotmats[rows]
    turned = own @ joint_turns(len(rotmats), degrees, generator, rotmats.dtype, rows.cpu()).to(rotmats.device)
    out = rotmats.clone()
    out[rows] = turned_within_limits(own, turned, limits)
    return out


# The flexion axis of each joint a crouch bends (SMPL: x, the body's left, in the parent's rest
# frame): hips flex forward about -x, knees about +x, ankles lift the toes about -x, and the
# spine bends forward about +x.
CROUCH_LEGS = {"left": ("left_hip", "left_knee", "left_ankle"), "right": ("right_hip", "right_knee", "right_ankle")}
CROUCH_SPINE = ("spine1", "spine2", "spine3")


def crouch_poses(rotmats: torch.Tensor, share: float, degrees: Sequence[float], limits: JointLimits,
                 generator: torch.Generator) -> torch.Tensor:
    """Poses (B, 24, 3, 3), a ``share`` of them crouched: a hip flexion ``a`` uniform in
    ``degrees``; per leg the hip flexed by ``s a`` (``s`` uniform in [0.7, 1]), the knee by
    ``k s a`` (``k`` uniform in [1, 1.5]) and the ankle by the difference, ``(k - 1) s a``; the
    three spine joints leaning forward by a third of ``l a`` each (``l`` uniform in [0, 0.5]).
    Each bend is made in the joint's own frame (``own @ Rx``) and held to ``limits`` as a
    mutation is (``turned_within_limits``); 6 uniforms per row from ``generator``."""
    u = torch.rand(len(rotmats), 6, generator=generator, dtype=torch.float64)
    rows = torch.nonzero(u[:, 0] < share).squeeze(1)
    u = u[rows]
    hip = torch.deg2rad(degrees[0] + (degrees[1] - degrees[0]) * u[:, 1])
    knee_ratio = 1.0 + 0.5 * u[:, 2]
    angles = torch.zeros(len(rows), NUM_JOINTS, dtype=torch.float64)
    for side, (h, k, a) in enumerate(CROUCH_LEGS.values()):
        leg = hip * (0.7 + 0.3 * u[:, 3 + side])
        angles[:, JOINT_INDEX[h]] = -leg
        angles[:, JOINT_INDEX[k]] = knee_ratio * leg
        angles[:, JOINT_INDEX[a]] = -(knee_ratio - 1.0) * leg
    for name in CROUCH_SPINE:
        angles[:, JOINT_INDEX[name]] = 0.5 * u[:, 5] * hip / len(CROUCH_SPINE)
    axis_angle = torch.zeros(len(rows), NUM_JOINTS, 3, dtype=torch.float64)
    axis_angle[..., 0] = angles
    rows = rows.to(rotmats.device)
    own = rotmats[rows]
    turned = own @ axis_angle_to_matrix(axis_angle).to(own)
    out = rotmats.clone()
    out[rows] = turned_within_limits(own, turned, limits)
    return out
