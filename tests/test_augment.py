"""Sample-time augmentation: mirrored and tilted bodies, limb crossover, joint mutation, crouches, wide bodies, and their recipe table."""

from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from posesynth.augment import (CROUCH_LEGS, LIMB_JOINTS, NO_AUGMENTATION, POOL_AUGMENTATIONS, crouch_poses,
                               cross_limbs, joint_turns, mirror_poses, mutate_joints, tilt_bodies)
from posesynth.body_range import WideBodyRange
from posesynth.config import RecipeError
from posesynth.plausibility import JointLimits, implausible
from posesynth.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from posesynth.sample_recipe import resolve_sample_recipe, validate_sample_recipe
from posesynth.skeleton import JOINT_INDEX, mirror_index


def random_poses(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return axis_angle_to_matrix(0.5 * torch.randn(n, 24, 3, generator=g))


def up_axis_angle_deg(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """Angle (deg) between the bodies' up axes (their rotations' second column) before and after."""
    cos = (before[:, :, 1] * after[:, :, 1]).sum(-1).clamp(-1, 1)
    return torch.rad2deg(torch.acos(cos))


@settings(max_examples=25, deadline=None)
@given(lo=st.floats(0, 180), width=st.floats(0, 180), seed=st.integers(0, 2**31))
def test_tilted_bodies_turn_by_an_angle_in_the_range(lo, width, seed):
    hi = min(180.0, lo + width)
    upright = torch.eye(3).expand(200, 3, 3)
    tilted = tilt_bodies(upright, 1.0, (lo, hi), torch.Generator().manual_seed(seed))
    angle = up_axis_angle_deg(upright, tilted)
    assert angle.min() >= lo - 0.01 and angle.max() <= hi + 0.01


def test_tilts_turn_about_a_horizontal_axis():
    start = random_poses(500)[:, 0]
    tilted = tilt_bodies(start, 1.0, (30.0, 120.0), torch.Generator().manual_seed(1))
    turn = tilted @ start.transpose(1, 2)
    axis = torch.stack([turn[:, 2, 1] - turn[:, 1, 2], turn[:, 0, 2] - turn[:, 2, 0], turn[:, 1, 0] - turn[:, 0, 1]], -1)
    assert (axis[:, 1].abs() / axis.norm(dim=-1)).max() < 1e-4


def test_tilt_applies_to_its_share_of_samples():
    start = torch.eye(3).expand(20000, 3, 3)
    tilted = tilt_bodies(start, 0.2, (30.0, 120.0), torch.Generator().manual_seed(2))
    changed = up_axis_angle_deg(start, tilted) > 1.0
    assert changed.float().mean() == pytest.approx(0.2, abs=0.01)


def test_mirrored_poses_put_the_joints_in_their_mirror_image(body, real_poses):
    betas = torch.randn(len(real_poses), 10, generator=torch.Generator().manual_seed(8))
    mirrored = mirror_poses(real_poses, 1.0, torch.Generator().manual_seed(9))
    joints = body.forward_rotmats(real_poses[:, 0], real_poses[:, 1:], betas).joints
    mirrored_joints = body.forward_rotmats(mirrored[:, 0], mirrored[:, 1:], betas).joints
    reflected = joints[:, list(mirror_index())] * torch.tensor([-1.0, 1.0, 1.0])
    assert torch.allclose(mirrored_joints, reflected, atol=1e-4)


def test_mirroring_twice_gives_the_pose_back():
    poses = random_poses(100)
    twice = mirror_poses(mirror_poses(poses, 1.0, torch.Generator()), 1.0, torch.Generator())
    assert torch.allclose(twice, poses, atol=1e-6)


def test_mirroring_applies_to_its_share_of_samples():
    poses = random_poses(20000)
    mirrored = mirror_poses(poses, 0.3, torch.Generator().manual_seed(10))
    changed = (mirrored - poses).flatten(1).abs().amax(1) > 0
    assert changed.float().mean() == pytest.approx(0.3, abs=0.01)


def test_crossover_replaces_exactly_one_limb_by_another_samples():
    poses = random_poses(3000)
    crossed = cross_limbs(poses, 0.5, torch.Generator().manual_seed(3))
    diff = (crossed - poses).flatten(2).abs().amax(-1) > 0  # (B, 24) joints that changed
    changed = diff.any(1)
    assert changed.float().mean() == pytest.approx(0.5, abs=0.03)
    limbs = [set(j) for j in LIMB_JOINTS.values()]
    for row in torch.nonzero(changed).squeeze(1)[:200]:
        joints = set(torch.nonzero(diff[row]).squeeze(1).tolist())
        assert any(joints <= limb for limb in limbs), joints
        # the new limb is some other sample's limb, unchanged
        limb = next(sorted(j) for j in LIMB_JOINTS.values() if joints <= set(j))
        assert (crossed[row, limb] - poses[:, limb]).flatten(1).abs().amax(1).min() == 0


def rotation_angle_deg(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Angle (deg) of the rotation between rotation matrices ``a`` and ``b`` (..., 3, 3)."""
    return torch.rad2deg(matrix_to_axis_angle(a.transpose(-1, -2) @ b).norm(dim=-1))


@settings(max_examples=20, deadline=None)
@given(degrees=st.floats(1, 60), seed=st.integers(0, 2**31))
def test_joint_turns_leave_the_root_and_spread_as_asked(degrees, seed):
    turns = joint_turns(4000, degrees, torch.Generator().manual_seed(seed), torch.float64)
    angle = rotation_angle_deg(torch.eye(3, dtype=torch.float64), turns)
    assert angle[:, 0].max() < 1e-9
    # |N(0, s)| has median 0.674 s
    assert angle[:, 1:].median() == pytest.approx(0.674 * degrees, rel=0.05)


def test_mutated_real_poses_stay_within_the_joint_limits(real_poses):
    limits = JointLimits.from_poses(real_poses)
    mutated = mutate_joints(real_poses, 1.0, 15.0, limits, torch.Generator().manual_seed(4))
    assert not implausible(mutated, limits)["any"].any()


def test_mutation_turns_the_body_joints_of_its_share_of_poses_only(real_poses):
    limits = JointLimits.from_poses(real_poses)
    mutated = mutate_joints(real_poses, 0.5, 10.0, limits, torch.Generator().manual_seed(5))
    moved = rotation_angle_deg(real_poses, mutated) > 0.5  # (N, 24)
    assert not moved[:, 0].any()
    assert moved[:, 1:].any(1).float().mean() == pytest.approx(0.5, abs=0.08)


OPEN_LIMITS = JointLimits(torch.full((24, 3), -4.0), torch.full((24, 3), 4.0))  # no range check


@settings(max_examples=25, deadline=None)
@given(lo=st.floats(0, 150), width=st.floats(0, 150), seed=st.integers(0, 2**31))
def test_a_crouch_keeps_an_upright_pelvis_s_feet_flat(lo, width, seed):
    hi = min(150.0, lo + width)
    rest = torch.eye(3, dtype=torch.float64).expand(64, 24, 3, 3)
    crouched = crouch_poses(rest, 1.0, (lo, hi), OPEN_LIMITS, torch.Generator().manual_seed(seed))
    for hip, knee, ankle in CROUCH_LEGS.values():
        foot = crouched[:, JOINT_INDEX[hip]] @ crouched[:, JOINT_INDEX[knee]] @ crouched[:, JOINT_INDEX[ankle]]
        assert torch.allclose(foot, rest[:, 0], atol=1e-9)


def test_a_crouch_flexes_hips_by_an_angle_in_the_range_and_knees_further():
    rest = torch.eye(3).expand(2000, 24, 3, 3)
    crouched = matrix_to_axis_angle(crouch_poses(rest, 1.0, (60.0, 90.0), OPEN_LIMITS,
                                                 torch.Generator().manual_seed(3)))
    for hip, knee, _ in CROUCH_LEGS.values():
        hip_flexion, knee_flexion = -crouched[:, JOINT_INDEX[hip], 0], crouched[:, JOINT_INDEX[knee], 0]
        assert torch.rad2deg(hip_flexion).min() >= 0.7 * 60 - 0.01 and torch.rad2deg(hip_flexion).max() <= 90.01
        ratio = knee_flexion / hip_flexion
        assert ratio.min() >= 1 - 1e-4 and ratio.max() <= 1.5 + 1e-4


def test_a_crouch_lowers_the_pelvis_towards_the_feet(body, real_poses):
    def pelvis_height(poses):
        joints = body.forward_rotmats(torch.eye(3).expand(len(poses), 3, 3), poses[:, 1:]).joints
        ankles = [JOINT_INDEX["left_ankle"], JOINT_INDEX["right_ankle"]]
        return joints[:, 0, 1] - joints[:, ankles, 1].min(1).values

    crouched = crouch_poses(real_poses, 1.0, (60.0, 120.0), JointLimits.from_poses(real_poses),
                            torch.Generator().manual_seed(6))
    assert pelvis_height(crouched).median() < pelvis_height(real_poses).median() - 0.1


def test_crouched_real_poses_stay_within_the_joint_limits(real_poses):
    limits = JointLimits.from_poses(real_poses)
    crouched = crouch_poses(real_poses, 1.0, (30.0, 150.0), limits, torch.Generator().manual_seed(7))
    assert not implausible(crouched, limits)["any"].any()


def test_a_crouch_applies_to_its_share_of_samples():
    rest = torch.eye(3).expand(20000, 24, 3, 3)
    crouched = crouch_poses(rest, 0.3, (30.0, 120.0), OPEN_LIMITS, torch.Generator().manual_seed(8))
    moved = rotation_angle_deg(rest, crouched)[:, 1:].amax(1) > 1.0
    assert moved.float().mean() == pytest.approx(0.3, abs=0.01)


def test_a_crouch_needs_the_source_s_joint_limits():
    aug = replace(NO_AUGMENTATION, crouch=0.5)
    with pytest.raises(ValueError, match="augment.crouch needs the pose source's joint limits"):
        aug.apply(random_poses(8), torch.zeros(8, 10), torch.Generator().manual_seed(0), None)


def test_wide_bodies_replace_their_share_of_bodies(body):
    betas = torch.zeros(8000, 10)
    aug = replace(NO_AUGMENTATION, wide_bodies=0.3)
    _, out = aug.apply(random_poses(8000), betas, torch.Generator().manual_seed(4), WideBodyRange.for_body(body))
    assert (out.abs().amax(1) > 0).float().mean() == pytest.approx(0.3, abs=0.02)


def test_no_augmentation_changes_nothing():
    poses, betas = random_poses(100), torch.randn(100, 10)
    out_poses, out_betas = NO_AUGMENTATION.apply(poses, betas, torch.Generator().manual_seed(0), None)
    assert torch.equal(out_poses, poses) and torch.equal(out_betas, betas)


def test_the_same_generator_state_gives_the_same_augmentation(body):
    aug = replace(NO_AUGMENTATION, mirror=0.5, wide_bodies=0.5, tilt=0.5, crossover=0.5)
    wide = WideBodyRange.for_body(body)
    poses, betas = random_poses(256), torch.zeros(256, 10)
    a = aug.apply(poses, betas, torch.Generator().manual_seed(7), wide)
    b = aug.apply(poses, betas, torch.Generator().manual_seed(7), wide)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("override, message", [
    ("augment.tilt=1.5", "augment.tilt must be a share between 0 and 1"),
    ("augment.mirror=1.5", "augment.mirror must be a share"),
    ("augment.crossover=-0.1", "augment.crossover must be a share"),
    ("augment.wide_bodies=true", "augment.wide_bodies must be a share"),
    ("augment.tilt_deg=[120, 30]", "augment.tilt_deg must be"),
    ("augment.tilt_deg=[0, 200]", "augment.tilt_deg must be"),
    ("augment.tilt_deg=45", "augment.tilt_deg must be"),
    ("augment.mutation=2", "augment.mutation must be a share"),
    ("augment.mutation_deg=-5", "augment.mutation_deg must be degrees"),
    ("augment.crouch=-0.5", "augment.crouch must be a share"),
    ("augment.crouch_deg=[90, 30]", "augment.crouch_deg must be"),
    ("augment.crouch_deg=[0, 170]", "augment.crouch_deg must be"),
    ("augment.bodies=1", "unknown key augment.bodies"),
])
def test_bad_augment_settings_are_refused_naming_the_key(override, message):
    with pytest.raises(RecipeError, match=message):
        resolve_sample_recipe(overrides=[override])


def test_the_default_recipe_turns_the_chosen_mechanisms_on():
    augment = resolve_sample_recipe().augment
    on = {name for name in POOL_AUGMENTATIONS if getattr(augment, name) > 0}
    assert on == {"mirror", "wide_bodies", "tilt", "crossover", "mutation"}


def test_a_recipe_without_an_augment_table_has_none():
    recorded = resolve_sample_recipe().to_dict()
    del recorded["augment"]
    recipe = validate_sample_recipe(recorded)
    assert recipe.augment is None and recipe.augmentation == NO_AUGMENTATION
    assert recipe.to_dict() == recorded


def test_a_recorded_augment_table_without_a_newer_mechanism_has_it_off():
    recorded = resolve_sample_recipe(overrides=["augment.mutation=0.5"]).to_dict()
    del recorded["augment"]["mutation"], recorded["augment"]["mutation_deg"]
    assert validate_sample_recipe(recorded).augment.mutation == 0.0
