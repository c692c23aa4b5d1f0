"""Keypoint sets: names and order, derivations, and vertex keypoints without the full mesh."""

import json
import tomllib
from importlib import resources

import pytest
import torch

from posesynth.body_model import BodyModel
from posesynth.keypoint_sets import KEYPOINT_SETS, compute_keypoints, landmark_vertex_id
from posesynth.kinematics import forward_kinematics
from posesynth.rotations import axis_angle_to_matrix
from posesynth.skeleton import JOINT_INDEX, SMPL_JOINT_NAMES, SMPL_PARENTS

SETS = ["smpl24", "h36m17", "coco17"]


def posed(body, B=6, seed=0, dtype=torch.float32, scale=0.4):
    """Random poses: (axis-angle (B, 24, 3), global rotations, joints with translation, betas, transl)."""
    g = torch.Generator().manual_seed(seed)
    aa = (torch.randn(B, 24, 3, generator=g) * scale).to(dtype)
    betas = (torch.randn(B, 10, generator=g) * 1.5).to(dtype)
    transl = torch.randn(B, 3, generator=g).to(dtype)
    G, joints = forward_kinematics(axis_angle_to_matrix(aa), body.rest_joints(betas))
    return aa, G, joints + transl[:, None], betas, transl


def rest(body):
    """The mean shape in its rest pose: (G, joints, betas), batch of 1."""
    G = torch.eye(3).expand(1, 24, 3, 3).clone()
    return G, body.rest_joints(torch.zeros(1, 10)), torch.zeros(1, 10)


def test_set_names_and_orders():
    assert set(KEYPOINT_SETS) == set(SETS)
    assert KEYPOINT_SETS["smpl24"].joint_names == SMPL_JOINT_NAMES
    assert KEYPOINT_SETS["smpl24"].parents == SMPL_PARENTS
    rig = tomllib.loads(resources.files("posesynth").joinpath("rigs/h36m17.toml").read_text())
    assert KEYPOINT_SETS["h36m17"].joint_names == tuple(rig["rig"]["joint_names"])
    assert KEYPOINT_SETS["h36m17"].parents == (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
    assert KEYPOINT_SETS["coco17"].joint_names == (
        "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
        "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle")
    assert KEYPOINT_SETS["coco17"].parents is None


@pytest.mark.parametrize("name", SETS)
def test_sets_are_well_formed(name):
    s = KEYPOINT_SETS[name]
    J = len(s)
    assert all(0 <= a < J and 0 <= b < J and a != b for a, b in s.edges)
    if s.parents is not None:
        assert set(s.edges) == {(p, c) for c, p in enumerate(s.parents) if p >= 0}
    for left, right in s.mirror_pairs:
        assert s.joint_names[left].replace("left_", "") == s.joint_names[right].replace("right_", "")
    assert s.derivation
    json.dumps(s.to_attrs())
    for src in s.sources:
        assert sum(w for _, w in src) == pytest.approx(1.0)


def test_needs_vertices_and_surface_flags():
    assert KEYPOINT_SETS["smpl24"].needs_vertices == ()
    assert KEYPOINT_SETS["h36m17"].needs_vertices == ("head_top",)
    assert KEYPOINT_SETS["coco17"].needs_vertices == ("nose", "leye", "reye", "lear", "rear")
    assert KEYPOINT_SETS["coco17"].surface == (True,) * 5 + (False,) * 12
    assert sum(KEYPOINT_SETS["h36m17"].surface) == 1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shapes_and_dtypes(body, dtype):
    _, G, joints, betas, _ = posed(body, B=5, dtype=dtype)
    out = compute_keypoints(SETS, body, G, joints, betas)
    assert list(out) == SETS
    for name in SETS:
        assert out[name].shape == (5, len(KEYPOINT_SETS[name]), 3)
        assert out[name].dtype == dtype
    torch.testing.assert_close(out["smpl24"], joints, rtol=0, atol=0)


def test_h36m_derivation(body):
    _, G, joints, betas, _ = posed(body, seed=1)
    h = compute_keypoints(["h36m17"], body, G, joints, betas)["h36m17"]
    names = KEYPOINT_SETS["h36m17"].joint_names
    j = lambda n: joints[:, JOINT_INDEX[n]]  # noqa: E731
    k = lambda n: h[:, names.index(n)]  # noqa: E731
    torch.testing.assert_close(k("pelvis"), 0.5 * (j("left_hip") + j("right_hip")))
    for same in ("right_hip", "left_knee", "right_ankle", "left_shoulder", "right_elbow", "left_wrist"):
        torch.testing.assert_close(k(same), j(same))
    torch.testing.assert_close(k("spine"), j("spine2"))
    torch.testing.assert_close(k("thorax"), j("neck"))
    torch.testing.assert_close(k("neck_nose"), j("head"))


def test_head_top_is_the_top_of_the_head(body):
    G, joints, betas = rest(body)
    h = compute_keypoints(["h36m17"], body, G, joints, betas)["h36m17"][0]
    top, head = h[KEYPOINT_SETS["h36m17"].joint_names.index("head")], joints[0, JOINT_INDEX["head"]]
    v = body.smpl.v_template
    assert float(top[1]) == pytest.approx(float(v[:, 1].max()), abs=1e-6)  # highest point of the T-pose
    assert 0.1 < float(top[1] - head[1]) < 0.25 and abs(float(top[0])) < 1e-6
    assert landmark_vertex_id(body, "head_top") == int(v[:, 1].argmax())


def test_coco_face_points_in_the_rest_pose(body):
    G, joints, betas = rest(body)
    c = compute_keypoints(["coco17"], body, G, joints, betas)["coco17"][0]
    names = KEYPOINT_SETS["coco17"].joint_names
    k = lambda n: c[names.index(n)]  # noqa: E731
    head = joints[0, JOINT_INDEX["head"]]
    assert float(k("nose")[2]) > float(head[2]) + 0.05  # in front of the head (+z)
    assert float(k("nose")[1]) > float(k("left_shoulder")[1]) + 0.1  # above the shoulders
    assert abs(float(k("nose")[0])) < 1e-6
    assert float(k("left_eye")[0]) > 0 > float(k("right_eye")[0])  # the body's left is +x
    assert float(k("left_ear")[0]) > float(k("left_eye")[0]) > 0
    assert float(k("left_eye")[1]) > float(k("nose")[1])  # eyes above the nose
    assert float(k("left_ear")[2]) < float(k("left_eye")[2])  # ears behind the eyes
    torch.testing.assert_close(k("left_eye"), k("right_eye") * torch.tensor([-1.0, 1.0, 1.0]))


def test_vertex_keypoints_equal_the_full_meshs_vertices(body):
    aa, G, joints, betas, transl = posed(body, B=8, seed=2, scale=0.6)
    out = body(aa[:, 0], aa[:, 1:].reshape(8, -1), betas, transl)
    torch.testing.assert_close(out.joints, joints, atol=1e-5, rtol=0)
    kp = compute_keypoints(["h36m17", "coco17"], body, G, joints, betas)
    for name, index in (("coco17", 0), ("coco17", 1), ("coco17", 4), ("h36m17", 10)):
        src = KEYPOINT_SETS[name].sources[index][0][0].removeprefix("vertex:")
        vid = landmark_vertex_id(body, src)
        torch.testing.assert_close(kp[name][:, index], out.vertices[:, vid], atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_skin_vertices_matches_the_smplx_forward(body, dtype):
    aa, G, joints, betas, transl = posed(body, B=4, seed=3, scale=0.7, dtype=dtype)
    out = body(aa[:, 0].float(), aa[:, 1:].reshape(4, -1).float(), betas.float(), transl.float())
    ids = torch.arange(0, body.num_vertices, 5)
    v = body.skin_vertices(ids, G, joints, betas)
    assert v.shape == (4, len(ids), 3) and v.dtype == dtype
    torch.testing.assert_close(v.float(), out.vertices[:, ids], atol=1e-5, rtol=0)


def test_only_the_landmark_vertices_are_skinned(body, monkeypatch):
    calls = []
    real = BodyModel.skin_vertices

    def spy(self, ids, *args):
        calls.append(list(ids))
        return real(self, ids, *args)

    def no_mesh(*args, **kwargs):
        raise AssertionError("the full mesh was posed")

    monkeypatch.setattr(BodyModel, "skin_vertices", spy)
    monkeypatch.setattr(BodyModel, "forward", no_mesh)
    _, G, joints, betas, _ = posed(body, B=3)
    compute_keypoints(SETS, body, G, joints, betas)
    assert len(calls) == 1 and len(calls[0]) == 6  # head top + 5 face points, once
    calls.clear()
    compute_keypoints(["smpl24"], body, G, joints, betas)
    assert calls == []


def test_bad_input_is_named(body):
    _, G, joints, betas, _ = posed(body, B=2)
    with pytest.raises(ValueError, match="mpii16"):
        compute_keypoints(["mpii16"], body, G, joints, betas)
    with pytest.raises(ValueError, match="joints"):
        compute_keypoints(["coco17"], body, G, joints[:, :20], betas)
    with pytest.raises(ValueError, match="global_rotmats"):
        compute_keypoints(["coco17"], body, G[:, :5], joints, betas)
    with pytest.raises(ValueError, match="landmark"):
        landmark_vertex_id(body, "left_pinky_nail")
