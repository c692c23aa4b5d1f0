"""Generation: one block of a run, from its own seeds, as numpy arrays (``BlockSampler``).

Per block of ``block_size`` rows:

1. poses from the pose source, in its canonical yaw (the body faces +z), and betas (the
   source's, or the prior's: ``sample.betas``), then the recipe's ``[augment]`` (wide bodies,
   tilted bodies, limb crossover, mirror images: ``posesynth.augment``);
2. joints by forward kinematics on ``body.rest_joints(betas)`` (the mesh is never skinned; a
   keypoint set that needs surface points skins only those vertices), the body put standing
   on the floor over the origin (``floor_translation``);
3. keypoints of every requested set, ``V`` random cameras (``posesynth.cameras``), projection,
   visibility (in frame; not hidden by a capsule model of the body, ``posesynth.visibility``)
   and, when asked, detector-like noisy 2D (``posesynth.noise``).

Determinism: block ``b`` draws every random number from four CPU generators seeded from
``(seed, b)`` (``block_generators``), one per stream (pose, camera, noise, augment), and is
computed on its own, so a block's rows never depend on how blocks are batched, which process
computes them, or how the store is chunked.

Sizes: B rows of a block, V views, J keypoints of a set, K betas.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from posesynth.body_model import BodyModel
from posesynth.body_prior import body_model_prior
from posesynth.body_range import WideBodyRange
from posesynth.hardness import CANDIDATES_PER_SAMPLE, HardnessSelector
from posesynth.cameras import project, sample_cameras
from posesynth.kinematics import forward_kinematics
from posesynth.keypoint_sets import compute_keypoints, keypoint_sets
from posesynth.noise import add_detector_noise
from posesynth.plausibility import JointLimits
from posesynth.pose_source import PoseSource, label_index
from posesynth.rotations import matrix_to_axis_angle
from posesynth.sample_recipe import SampleRecipe
from posesynth.sampling.errors import SampleError
from posesynth.skeleton import JOINT_INDEX
from posesynth.stores.samples import (
    CAMERA_PARAMS, LABEL_PATH, NOISY, VISIBLE_IN_FRAME, VISIBLE_NOT_OCCLUDED, camera_path, keypoints_path, smpl_path,
)
from posesynth.visibility import BodyCapsules, DistinctKeypoints, in_frame, self_occlusion_sets

STREAMS = ("pose", "camera", "noise", "augment")


# ---------------------------------------------------------------------------- randomness
def block_seed(seed: int, block: int, stream: str) -> int:
    """A 63-bit seed for ``stream`` of block ``block`` of a run seeded with ``seed``."""
    digest = hashlib.sha256(f"posesynth.sample:{seed}:{block}:{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def block_generators(seed: int, block: int) -> dict[str, torch.Generator]:
    """One CPU generator per stream (``STREAMS``) for block ``block``."""
    return {s: torch.Generator().manual_seed(block_seed(seed, block, s)) for s in STREAMS}


# ---------------------------------------------------------------------------- one block
def sole_clearance(body: BodyModel) -> float:
    """Height (m) of the rest foot joints above the sole (the lowest rest vertex)."""
    feet = body.J_template[[JOINT_INDEX["left_foot"], JOINT_INDEX["right_foot"]], 1].min()
    return float(feet - body.smpl.v_template[:, 1].min())


def floor_translation(joints: torch.Tensor, clearance: float) -> torch.Tensor:
    """SMPL ``transl`` (B, 3) that puts bodies with FK joints (B, 24, 3) over the origin (pelvis
    at x = z = 0) and on the floor (the lowest joint ``clearance`` above y = 0)."""
    t = -joints[:, 0].clone()
    t[:, 1] = clearance - joints[:, :, 1].amin(1)
    return t


def check_body_model(source: PoseSource, body: BodyModel) -> None:
    """SampleError when ``source`` records the body model it was made with (``body_model``: a GAN
    checkpoint's, a training store's) and ``body`` is another one."""
    made_with = getattr(source, "body_model", None)
    if made_with is not None and made_with != body.identity:
        raise SampleError(f"{source.identity} was made with body model {made_with}, but sampling uses "
                          f"{body.identity}; pass that model's file (--body-model)")


class BlockSampler:
    """Generates whole blocks of a run: ``block(b)`` -> {array name: (block_size, ...) numpy}."""

    def __init__(self, source: PoseSource, recipe: SampleRecipe, seed: int, body: BodyModel,
                 device: torch.device | str = "cpu") -> None:
        self.augment = recipe.augmentation
        self.source = tempered(source, self.augment.temperature)
        self.seed = seed
        self.device = torch.device(device)
        self.body = body.to(self.device)
        self.size = recipe.sample.block_size
        self.sets = keypoint_sets(recipe.sample.keypoint_sets)
        self.cameras = recipe.camera.distribution()
        self.noise = recipe.noise if recipe.sample.noise else None
        self.prior_betas = recipe.sample.betas == "prior"
        self.label = label_index(source, recipe.sample.label)
        self.bodies = WideBodyRange.for_body(self.body) if self.augment.wide_bodies else None
        needing = [name for name in ("mutation", "crouch") if getattr(self.augment, name)]
        self.limits = joint_limits(source, needing[0]) if needing else None
        self.hardness = (HardnessSelector(self.augment.hardness_lifter, self.augment.hardness, self.body, self.cameras)
                         if self.augment.hardness else None)
        self.capsules = BodyCapsules.from_body(body)
        self.clearance = sole_clearance(body)
        self.distinct = DistinctKeypoints.of(self.sets)

    @torch.no_grad()
    def block(self, b: int) -> dict[str, np.ndarray]:
        """Rows ``[b * size, (b + 1) * size)`` of the run: every array of ``array_shapes``,
        (size, ...) numpy, computed on ``device`` from block ``b``'s own generators."""
        g = block_generators(self.seed, b)
        rotmats, betas, labels = self._poses(g)
        global_rotmats, joints = forward_kinematics(rotmats, self.body.rest_joints(betas))
        transl = floor_translation(joints, self.clearance)
        joints = joints + transl[:, None]
        cams = sample_cameras(self.cameras, joints, g["camera"], self.device)
        out = {
            smpl_path("global_orient"): matrix_to_axis_angle(rotmats[:, 0]),
            smpl_path("body_pose"): matrix_to_axis_angle(rotmats[:, 1:]).flatten(1),
            smpl_path("betas"): betas, smpl_path("transl"): transl, LABEL_PATH: labels.to(torch.int32),
            **{camera_path(p): getattr(cams, p) for p in CAMERA_PARAMS},
        }
        world = compute_keypoints([s.name for s in self.sets], self.body, global_rotmats, joints, betas)
        hidden = self._self_occlusion(world, joints, global_rotmats, betas, cams)
        for s in self.sets:
            out.update(self._keypoints(s, world[s.name], hidden[s.name], cams, g["noise"]))
        return {k: v.cpu().numpy() for k, v in out.items()}

    def _poses(self, g: dict[str, torch.Generator]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The block's poses (size, 24, 3, 3), bodies (size, K) and labels (size,): drawn from the
        source, augmented, and (with ``augment.hardness``) the hard half of twice as many kept."""
        n = self.size * (CANDIDATES_PER_SAMPLE if self.hardness else 1)
        poses = self.source.sample(n, g["pose"], self.label, self.device)
        betas = body_model_prior(self.body.num_betas).sample(n, g["pose"]) if self.prior_betas else poses.betas
        betas = self._pad_betas(betas.to(self.device, self.body.dtype))
        rotmats = poses.rotmats.to(self.device, self.body.dtype)
        rotmats, betas = self.augment.apply(rotmats, betas, g["augment"], self.bodies, self.limits)
        if self.hardness is None:
            return rotmats, betas, poses.labels
        keep = self.hardness.select(rotmats, betas, self.size, g["augment"]).to(rotmats.device)
        return rotmats[keep], betas[keep], poses.labels[keep]

    def _self_occlusion(self, world, joints, global_rotmats, betas, cams) -> dict[str, torch.Tensor]:
        """Per set, (B, V, J) bool hidden by the body; each distinct keypoint is tested once."""
        capsules = self.capsules.capsules_for(joints, global_rotmats, betas)
        return self_occlusion_sets(world, cams.centres, capsules, self.distinct)

    def _pad_betas(self, betas: torch.Tensor) -> torch.Tensor:
        """Betas (B, k) of the source, k <= K, zero-padded to the body model's K -> (B, K)."""
        K = self.body.num_betas
        if betas.shape[1] > K:
            raise SampleError(f"the pose source gives {betas.shape[1]} betas; the body model has {K}")
        return torch.nn.functional.pad(betas, (0, K - betas.shape[1]))

    def _keypoints(self, s, world, hidden, cams, noise_generator) -> dict[str, torch.Tensor]:
        """Arrays of one keypoint set from its world keypoints (B, J, 3) and hidden (B, V, J)."""
        pixels, points_cam = project(world, cams)
        visible = in_frame(pixels, cams.image_size, points_cam[..., 2]).to(torch.uint8) * VISIBLE_IN_FRAME
        visible += (~hidden).to(torch.uint8) * VISIBLE_NOT_OCCLUDED
        out = {keypoints_path(s.name, "world"): world, keypoints_path(s.name, "camera"): points_cam,
               keypoints_path(s.name, "pixels"): pixels, keypoints_path(s.name, "visible"): visible}
        if self.noise is not None:
            out[keypoints_path(s.name, NOISY)] = add_detector_noise(pixels, s, self.noise, noise_generator)
        return out


def tempered(source: PoseSource, temperature: float) -> PoseSource:
    """``source`` drawing at ``temperature`` (``augment.temperature``; GAN checkpoints only)."""
    if temperature == 1.0:
        return source
    if not hasattr(source, "tempered"):
        raise SampleError(f"augment.temperature = {temperature}: {source.identity} is not a GAN checkpoint; "
                          f"only a generator's latents can be tempered")
    return source.tempered(temperature)


def joint_limits(source: PoseSource, mechanism: str) -> JointLimits:
    """The joint limits ``augment.<mechanism>`` (mutation, crouch) keeps ``source``'s poses in (GAN
    checkpoints trained with this posesynth carry their training poses', a training store its own)."""
    limits = getattr(source, "joint_limits", None)
    if limits is None:
        raise SampleError(f"augment.{mechanism}: {source.identity} has no joint limits to keep its turned "
                          f"poses in; a GAN checkpoint trained with this posesynth and a training store "
                          f"have them (or set augment.{mechanism}=0)")
    return limits
