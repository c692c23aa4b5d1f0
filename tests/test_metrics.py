"""Pose-set metrics, plausibility, recombination and the pose classifier on cases with known answers."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from posesynth.kinematics import forward_kinematics, rotation_about_y, yaw_angle
from posesynth.metrics import apd, canonical_joints, coverage, frechet_distance, mpjpe, nearest_mpjpe
from posesynth.plausibility import HEAD_TURN_LIMIT, JointLimits, PlausibilityError, bone_length_asymmetry, implausible, \
    turned_within_limits
from posesynth.pose_classifier import train_classifier
from posesynth.recombination import recombine
from posesynth.rotations import axis_angle_to_matrix
from posesynth.skeleton import JOINT_INDEX, NUM_JOINTS

EYE = torch.eye(3, dtype=torch.float64)


def poses(n, scale=0.3, seed=0):
    rv = np.random.default_rng(seed).normal(scale=scale, size=(n, NUM_JOINTS, 3))
    return torch.as_tensor(Rotation.from_rotvec(rv.reshape(-1, 3)).as_matrix()).reshape(n, NUM_JOINTS, 3, 3)


def test_nearest_mpjpe_finds_the_known_neighbour():
    refs = torch.randn(500, 24, 3, dtype=torch.float64)
    offset = torch.zeros(24, 3, dtype=torch.float64)
    offset[:, 0] = 0.01  # every joint 1 cm off
    queries = refs[[3, 77, 420]] + offset
    torch.testing.assert_close(nearest_mpjpe(queries, refs).double(), torch.full((3,), 0.01, dtype=torch.float64), atol=1e-6, rtol=0)
    assert nearest_mpjpe(refs[:5], refs).abs().max() < 1e-6


def test_coverage_summary():
    cov = coverage(torch.tensor([0.01, 0.04, 0.06, 0.2]))
    assert cov["under_50mm"] == 0.5 and cov["under_100mm"] == 0.75
    assert math.isclose(cov["median_mm"], 50.0, rel_tol=1e-6) and math.isclose(cov["mean_mm"], 77.5, rel_tol=1e-6)


def test_apd_of_two_poses_is_their_distance():
    a = torch.zeros(2, 24, 3, dtype=torch.float64)
    a[1, :, 1] = 0.1
    assert math.isclose(apd(a), 100.0, rel_tol=1e-9)


def test_frechet_distance_is_zero_for_the_same_set_and_grows_with_a_shift():
    x = torch.randn(2000, 24, 3, dtype=torch.float64) * 0.1
    assert abs(frechet_distance(x, x)) < 1e-3
    shifted = x + 0.01  # 10 mm on each of 72 coordinates: 72 * 100 mm^2
    assert math.isclose(frechet_distance(x, shifted), 7200.0, rel_tol=1e-3)


def test_canonical_joints_ignore_heading():
    rest = torch.randn(24, 3, dtype=torch.float64) * 0.3
    p = poses(4)
    turned = p.clone()
    turned[:, 0] = rotation_about_y(torch.tensor(1.1, dtype=torch.float64)) @ p[:, 0]
    torch.testing.assert_close(canonical_joints(turned, rest), canonical_joints(p, rest))
    assert canonical_joints(p, rest)[:, 0].abs().max() < 1e-12


def test_plausibility_flags_broken_joints_only():
    train = poses(400, scale=0.2, seed=1)
    limits = JointLimits.from_poses(train)
    ok = torch.eye(3, dtype=torch.float64).expand(4, 24, 3, 3).clone()
    assert not implausible(ok, limits)["any"].any()
    bad = ok.clone()
    bad[0, JOINT_INDEX["left_knee"]] = axis_angle_to_matrix(torch.tensor([-0.6, 0.0, 0.0], dtype=torch.float64))
    bad[1, JOINT_INDEX["right_elbow"]] = axis_angle_to_matrix(torch.tensor([0.0, -0.8, 0.0], dtype=torch.float64))
    bad[2, JOINT_INDEX["neck"]] = rotation_about_y(torch.tensor(1.2, dtype=torch.float64))
    bad[2, JOINT_INDEX["head"]] = rotation_about_y(torch.tensor(0.6, dtype=torch.float64))
    bad[3, JOINT_INDEX["left_hip"]] = axis_angle_to_matrix(torch.tensor([0.0, 0.0, 3.0], dtype=torch.float64))
    flags = implausible(bad, limits)
    assert flags["knee"].tolist() == [True, False, False, False]
    assert flags["elbow"].tolist() == [False, True, False, False]
    assert flags["head"].tolist() == [False, False, True, False]
    assert flags["range"][3] and flags["any"].all()


@given(st.integers(0, 2**31 - 1), st.floats(0.2, 2.0))
def test_the_head_check_is_the_heads_turn_from_the_chest_by_forward_kinematics(seed, scale):
    p = poses(64, scale=scale, seed=seed)
    limits = JointLimits(torch.full((24, 3), -4.0), torch.full((24, 3), 4.0))  # the head check needs none
    global_rot, _ = forward_kinematics(p, torch.zeros(NUM_JOINTS, 3, dtype=torch.float64))
    chest, head = global_rot[:, JOINT_INDEX["spine3"]], global_rot[:, JOINT_INDEX["head"]]
    turned = yaw_angle(chest.transpose(-1, -2) @ head).abs() > HEAD_TURN_LIMIT
    assert implausible(p, limits)["head"].tolist() == turned.tolist()


def test_a_pose_the_hinge_checks_refuse_sets_no_joint_limits():
    train = poses(400, scale=0.2, seed=1)
    broken = EYE.expand(1, 24, 3, 3).clone()
    broken[0, JOINT_INDEX["right_knee"]] = axis_angle_to_matrix(torch.tensor([-2.8, 0.0, 0.0], dtype=torch.float64))
    broken[0, JOINT_INDEX["right_hip"]] = axis_angle_to_matrix(torch.tensor([2.6, 0.0, 0.0], dtype=torch.float64))
    with_broken = JointLimits.from_poses(torch.cat([train, broken]))
    alone = JointLimits.from_poses(train)
    torch.testing.assert_close(with_broken.low, alone.low)
    torch.testing.assert_close(with_broken.high, alone.high)


def test_joint_limits_from_poses_that_all_fail_the_hinge_checks_are_refused():
    broken = EYE.expand(3, 24, 3, 3).clone()
    broken[:, JOINT_INDEX["left_knee"]] = axis_angle_to_matrix(torch.tensor([-1.0, 0.0, 0.0], dtype=torch.float64))
    with pytest.raises(PlausibilityError, match="none of the 3 poses passes the knee, elbow and head checks"):
        JointLimits.from_poses(broken)


@given(st.integers(0, 2**31 - 1), st.floats(0.1, 1.5))
def test_poses_turned_within_limits_are_never_less_plausible_than_their_own(seed, scale):
    limits = JointLimits.from_poses(poses(400, scale=0.3, seed=1))
    own = poses(64, scale=0.3, seed=seed)
    turned = own @ poses(64, scale=scale, seed=seed + 1)
    held = turned_within_limits(own, turned, limits)
    assert not (implausible(held, limits)["any"] & ~implausible(own, limits)["any"]).any()


def test_a_turn_within_limits_is_made_and_one_beyond_them_is_not():
    limits = JointLimits(torch.full((24, 3), -0.5, dtype=torch.float64), torch.full((24, 3), 0.5, dtype=torch.float64))
    own = EYE.expand(1, 24, 3, 3).clone()
    turns = torch.zeros(1, 24, 3, dtype=torch.float64)
    turns[0, JOINT_INDEX["spine1"], 2] = 0.3  # stays inside
    turns[0, JOINT_INDEX["spine2"], 2] = 0.8  # beyond 0.5
    held = turned_within_limits(own, own @ axis_angle_to_matrix(turns), limits)
    torch.testing.assert_close(held[0, JOINT_INDEX["spine1"]], axis_angle_to_matrix(turns[0, JOINT_INDEX["spine1"]]))
    assert torch.equal(held[0, JOINT_INDEX["spine2"]], EYE)


def test_fk_bodies_are_symmetric():
    rest = torch.randn(24, 3, dtype=torch.float64)
    from posesynth.skeleton import mirror_index

    rest = 0.5 * (rest + rest[list(mirror_index())] * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64))
    _, joints = forward_kinematics(poses(10), rest)
    assert bone_length_asymmetry(joints) < 1e-9


def test_recombination_mixes_parents_and_stays_plausible():
    train = poses(300, scale=0.2, seed=2)
    limits = JointLimits.from_poses(train)
    kids = recombine(train, 500, limits, torch.Generator().manual_seed(0))
    assert kids.shape == (500, 24, 3, 3)
    assert not implausible(kids, limits)["any"].any()
    # Children are new poses: not copies of a training pose.
    rest = torch.randn(24, 3, dtype=torch.float64) * 0.3
    d = nearest_mpjpe(canonical_joints(kids, rest), canonical_joints(train, rest))
    assert (d > 1e-4).float().mean() > 0.9


def test_pose_classifier_separates_distinct_poses():
    rest = torch.randn(24, 3, dtype=torch.float64) * 0.3
    a, b = poses(300, 0.05, 3), poses(300, 0.05, 4)
    b[:, JOINT_INDEX["left_shoulder"]] = axis_angle_to_matrix(torch.tensor([0.0, 0.0, 1.2], dtype=torch.float64)) @ b[:, JOINT_INDEX["left_shoulder"]]
    joints = canonical_joints(torch.cat([a, b]), rest)
    labels = torch.cat([torch.zeros(300), torch.ones(300)]).long()
    clf = train_classifier(joints, labels, 2, steps=200)
    assert (clf.predict(joints) == labels).float().mean() > 0.95


def test_mpjpe_shape():
    assert mpjpe(torch.zeros(5, 24, 3), torch.ones(5, 24, 3)).shape == (5,)


def test_the_limit_penalty_is_zero_inside_the_limits_and_the_excess_outside():
    from posesynth.plausibility import JointLimits, limit_penalty

    limits = JointLimits(torch.full((24, 3), -0.5), torch.full((24, 3), 0.5))
    aa = torch.zeros(2, 24, 3)
    aa[1, 3, 2] = 0.8  # spine1 turned 0.3 rad past its limit (no knee or elbow)
    rotmats = axis_angle_to_matrix(aa).requires_grad_(True)
    penalty = limit_penalty(rotmats, limits)
    penalty.sum().backward()
    torch.testing.assert_close(penalty, torch.tensor([0.0, 0.3]), atol=1e-5, rtol=0)
    assert torch.isfinite(rotmats.grad).all()
