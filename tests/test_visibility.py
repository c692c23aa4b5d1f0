"""Visibility: in frame, and self-occlusion against the capsule body."""

import math

import pytest
import torch

import posesynth.visibility as visibility
from posesynth.keypoint_sets import KEYPOINT_SETS, compute_keypoints
from posesynth.kinematics import forward_kinematics
from posesynth.rotations import axis_angle_to_matrix
from posesynth.skeleton import JOINT_INDEX
from posesynth.visibility import (
    BodyCapsules, Capsules, DistinctKeypoints, in_frame, self_occlusion, self_occlusion_sets,
)

SMPL = KEYPOINT_SETS["smpl24"]
COCO = KEYPOINT_SETS["coco17"]


@pytest.fixture(scope="module")
def layout(body):
    return BodyCapsules.from_body(body)


def pose(body, rotations=None, B=1, dtype=torch.float64):
    """Global rotations and joints of the mean body with the given local axis-angles (radians)."""
    aa = torch.zeros(B, 24, 3, dtype=dtype)
    for name, v in (rotations or {}).items():
        aa[:, JOINT_INDEX[name]] = torch.tensor(v, dtype=dtype)
    return forward_kinematics(axis_angle_to_matrix(aa), body.rest_joints(torch.zeros(B, 10, dtype=dtype)))


def camera(azimuth_deg, height=0.2, distance=5.0, dtype=torch.float64):
    """(1, 1, 3) camera centre around the body: 0 in front (+z), 90 on its left (+x)."""
    a = math.radians(azimuth_deg)
    return torch.tensor([[[distance * math.sin(a), height, distance * math.cos(a)]]], dtype=dtype)


def hidden(body, layout, set_name, azimuth, rotations=None, height=0.2):
    G, joints = pose(body, rotations)
    kp = compute_keypoints([set_name], body, G, joints, torch.zeros(1, 10, dtype=joints.dtype))[set_name]
    occ = self_occlusion(kp, camera(azimuth, height), layout.capsules_for(joints, G), KEYPOINT_SETS[set_name])
    return {n for n, o in zip(KEYPOINT_SETS[set_name].joint_names, occ[0, 0]) if o}


ARMS_DOWN = {"left_shoulder": [0.0, 0.0, -1.3], "right_shoulder": [0.0, 0.0, 1.3]}
LEFT_HAND_UP = {"left_shoulder": [0.0, 0.0, 1.3]}


# ---------------------------------------------------------------------------- capsules
def test_capsule_radii_are_plausible(layout):
    r = dict(zip(((p, c) for p, c in layout.bones), layout.radius0.tolist()))
    J = JOINT_INDEX
    torso = r[(J["spine1"], J["spine2"])]
    thigh, shank = r[(J["left_hip"], J["left_knee"])], r[(J["left_knee"], J["left_ankle"])]
    upper, fore = r[(J["left_shoulder"], J["left_elbow"])], r[(J["left_elbow"], J["left_wrist"])]
    assert 0.1 < torso < 0.2 and torso > thigh > shank > 0.03 and upper > fore > 0.02
    assert r[(J["left_hip"], J["left_knee"])] == r[(J["right_hip"], J["right_knee"])]  # symmetric mesh
    head = layout.radius0[-1]
    assert layout.leaf_joints[-1] == J["head"] and 0.07 < float(head) < 0.13
    assert layout.num_capsules == 28 and (layout.radius0 > 0.01).all()
    # girth (beta 1) widens every capsule; betas move the radii linearly
    assert (layout.radius_dirs[:, 1] > 0).all()


def test_posed_capsules_follow_the_body(body, layout):
    G, joints = pose(body, ARMS_DOWN)
    caps = layout.capsules_for(joints, G)
    assert caps.a.shape == (1, 28, 3) and caps.radius.shape == (1, 28)
    bone = layout.bones.index((JOINT_INDEX["left_elbow"], JOINT_INDEX["left_wrist"]))
    torch.testing.assert_close(caps.a[0, bone], joints[0, JOINT_INDEX["left_elbow"]])
    torch.testing.assert_close(caps.b[0, bone], joints[0, JOINT_INDEX["left_wrist"]])
    # the head sphere sits above the head joint; without rotations it is placed the same way here
    no_rot = layout.capsules_for(joints)
    torch.testing.assert_close(no_rot.a[0, -1], caps.a[0, -1])
    assert float(caps.a[0, -1, 1]) > float(joints[0, JOINT_INDEX["head"], 1])
    wide = layout.capsules_for(joints, G, torch.tensor([[0.0, 2.0]], dtype=joints.dtype))
    assert (wide.radius > caps.radius).all()


# ---------------------------------------------------------------------------- occlusion
def test_nothing_is_occluded_in_an_empty_scene():
    p = torch.rand(3, 5, 3)
    empty = Capsules(torch.zeros(3, 0, 3), torch.zeros(3, 0, 3), torch.zeros(3, 0))
    occ = self_occlusion(p, torch.rand(3, 2, 3) + 5, empty)
    assert occ.shape == (3, 2, 5) and not occ.any()


def test_a_point_behind_the_torso_is_hidden_from_the_back_only(body, layout):
    G, joints = pose(body)
    caps = layout.capsules_for(joints, G)
    belly = joints[:, JOINT_INDEX["spine1"]] + torch.tensor([0.0, 0.0, 0.25], dtype=joints.dtype)
    p = belly[:, None]  # in front of the belly, outside every capsule
    front, back = camera(0.0), camera(180.0)
    assert not self_occlusion(p, front, caps)[0, 0, 0]
    assert self_occlusion(p, back, caps)[0, 0, 0]
    assert self_occlusion(p, torch.cat([front, back], 1), caps)[0, :, 0].tolist() == [False, True]


def test_a_wrist_in_front_of_the_chest_is_hidden_from_behind(body, layout):
    """The left arm reaches forward and the forearm folds inward, the wrist before the chest."""
    bent = {"left_shoulder": [0.0, -1.0, -1.3], "left_elbow": [0.0, -1.7, 0.0]}
    G, joints = pose(body, bent)
    wrist = joints[0, JOINT_INDEX["left_wrist"]]
    assert abs(float(wrist[0])) < 0.15 and float(wrist[2]) > 0.15  # in front of the torso
    assert "left_wrist" not in hidden(body, layout, "smpl24", 0.0, bent)
    assert "left_wrist" in hidden(body, layout, "smpl24", 180.0, bent)


def test_a_hand_beside_the_body_is_visible_from_its_side(body, layout):
    for rotations in (ARMS_DOWN, LEFT_HAND_UP):
        assert not {"left_wrist", "left_elbow", "left_hand"} & hidden(body, layout, "smpl24", 90.0, rotations)
        assert "left_wrist" not in hidden(body, layout, "smpl24", 0.0, rotations)
    # hanging beside the hip, the left hand is behind the body seen from the right
    assert {"left_wrist", "left_hand"} <= hidden(body, layout, "smpl24", -90.0, ARMS_DOWN)


def test_a_standing_body_seen_from_the_front_or_back_shows_its_joints(body, layout):
    for az in (0.0, 180.0):
        assert hidden(body, layout, "smpl24", az, ARMS_DOWN) == set()
        assert hidden(body, layout, "h36m17", az, ARMS_DOWN) == set()
    # from the side, the far leg is behind the near one
    assert {"right_knee", "right_ankle"} <= hidden(body, layout, "smpl24", 90.0, ARMS_DOWN)
    assert not {"left_knee", "left_ankle"} & hidden(body, layout, "smpl24", 90.0, ARMS_DOWN)


def test_face_points_turn_away_with_the_head(body, layout):
    assert not {"nose", "left_eye", "right_eye"} & hidden(body, layout, "coco17", 0.0)
    assert {"nose", "left_eye", "right_eye"} <= hidden(body, layout, "coco17", 180.0)
    assert not {"left_ear", "right_ear"} & hidden(body, layout, "coco17", 180.0)
    profile = hidden(body, layout, "coco17", 90.0)  # from the body's left
    assert {"right_eye", "right_ear"} <= profile and not {"nose", "left_eye", "left_ear"} & profile
    assert "left_ear" not in hidden(body, layout, "coco17", 30.0)


def test_sets_at_once_match_sets_one_by_one(body, layout):
    g = torch.Generator().manual_seed(0)
    aa = torch.randn(16, 24, 3, generator=g, dtype=torch.float64) * 0.4
    betas = torch.randn(16, 10, generator=g, dtype=torch.float64)
    G, joints = forward_kinematics(axis_angle_to_matrix(aa), body.rest_joints(betas))
    kp = compute_keypoints(["smpl24", "h36m17", "coco17"], body, G, joints, betas)
    caps = layout.capsules_for(joints, G, betas)
    centres = torch.randn(16, 3, 3, generator=g, dtype=torch.float64)
    centres = 4 * centres / centres.norm(dim=-1, keepdim=True)
    together = self_occlusion_sets(kp, centres, caps, DistinctKeypoints.of([KEYPOINT_SETS[name] for name in kp]))
    for name in kp:
        alone = self_occlusion(kp[name], centres, caps, KEYPOINT_SETS[name])
        assert torch.equal(together[name], alone)
    assert together["coco17"].any() and not together["coco17"].all()


def test_the_three_sets_share_all_but_31_of_their_58_keypoints():
    distinct = DistinctKeypoints.of([KEYPOINT_SETS[name] for name in ("smpl24", "h36m17", "coco17")])
    assert len(distinct.keypoints) == 31 and distinct.columns["smpl24"] == tuple(range(24))
    for name, columns in distinct.columns.items():
        assert [distinct.keypoints.sources[c] for c in columns] == list(KEYPOINT_SETS[name].sources)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_chunks_and_dtypes_give_the_same_answer(body, layout, monkeypatch, dtype):
    g = torch.Generator().manual_seed(1)
    aa = torch.randn(40, 24, 3, generator=g, dtype=torch.float64) * 0.5
    G, joints = forward_kinematics(axis_angle_to_matrix(aa), body.rest_joints(torch.zeros(40, 10, dtype=torch.float64)))
    centres = torch.randn(40, 2, 3, generator=g, dtype=torch.float64)
    centres = 5 * centres / centres.norm(dim=-1, keepdim=True)
    caps = layout.capsules_for(joints, G)
    whole = self_occlusion(joints, centres, caps, SMPL)
    monkeypatch.setitem(visibility._CHUNK, "cpu", 1000)  # one or two samples per step
    cast = Capsules(caps.a.to(dtype), caps.b.to(dtype), caps.radius.to(dtype), caps.attached)
    chunked = self_occlusion(joints.to(dtype), centres.to(dtype), cast, SMPL)
    assert (whole != chunked).double().mean() < 0.002  # float32 may flip a ray that grazes a capsule
    if dtype == torch.float64:
        assert torch.equal(whole, chunked)


def test_self_occlusion_checks_its_arguments(body, layout):
    G, joints = pose(body)
    caps = layout.capsules_for(joints, G)
    with pytest.raises(ValueError, match="keypoints_world"):
        self_occlusion(joints[0], camera(0.0), caps)
    with pytest.raises(ValueError, match="camera_centres"):
        self_occlusion(joints, camera(0.0)[0], caps)
    with pytest.raises(ValueError, match="coco17"):
        self_occlusion(joints, camera(0.0), caps, COCO)
    with pytest.raises(ValueError, match="joints"):
        layout.capsules_for(joints[:, :10])


# ---------------------------------------------------------------------------- in frame
def test_in_frame_uses_pixel_centres():
    size = torch.tensor([[[4, 3]]], dtype=torch.int32)
    xs = [(-0.5, 0.0), (3.4999, 2.4999), (3.5, 1.0), (-0.5001, 1.0), (1.0, -0.5), (1.0, 2.5), (1.0, -0.50001)]
    pixels = torch.tensor([[xs]], dtype=torch.float64)
    assert in_frame(pixels, size)[0, 0].tolist() == [True, True, False, False, True, False, False]
    depth = torch.tensor([[[1.0, -1.0, 1.0, 1.0, 0.0, 1.0, 1.0]]], dtype=torch.float64)
    assert in_frame(pixels, size, depth)[0, 0].tolist() == [True, False, False, False, False, False, False]
    with pytest.raises(ValueError, match="image_size"):
        in_frame(pixels, size[0])
    with pytest.raises(ValueError, match="pixels"):
        in_frame(pixels[0], size)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_occlusion_on_cuda_matches_the_cpu(body, layout):
    g = torch.Generator().manual_seed(2)
    aa = torch.randn(64, 24, 3, generator=g, dtype=torch.float64) * 0.5
    G, joints = forward_kinematics(axis_angle_to_matrix(aa), body.rest_joints(torch.zeros(64, 10, dtype=torch.float64)))
    centres = torch.randn(64, 2, 3, generator=g, dtype=torch.float64)
    centres = 5 * centres / centres.norm(dim=-1, keepdim=True)
    cpu = self_occlusion(joints, centres, layout.capsules_for(joints, G), SMPL)
    gpu = self_occlusion(joints.cuda(), centres.cuda(), layout.capsules_for(joints.cuda(), G.cuda()), SMPL)
    assert gpu.is_cuda and torch.equal(gpu.cpu(), cpu)
