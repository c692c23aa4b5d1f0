"""The default body model and its smplx wrapper."""

import importlib.util
import pickle
import re
import sys

import numpy as np
import pytest
import smplx
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from posesynth.body_model import DEFAULT_BODY_MODEL, BodyModel, BodyModelError, BodyOutput, load_body_model
from posesynth.kinematics import forward_kinematics
from posesynth.rotations import axis_angle_to_matrix
from posesynth.skeleton import JOINT_INDEX, NUM_JOINTS, SMPL_PARENTS, mirror_index

# Design rest joints (SMPL-neutral-like), left side and midline; the right side is mirrored.
DESIGN = {
    "pelvis": (0.0, -0.223, 0.028),
    "left_hip": (0.068, -0.314, 0.018),
    "left_knee": (0.106, -0.691, 0.016),
    "left_ankle": (0.088, -1.109, -0.029),
    "left_foot": (0.120, -1.166, 0.097),
    "spine1": (0.0, -0.114, 0.004),
    "spine2": (0.0, 0.015, 0.030),
    "spine3": (0.0, 0.073, 0.034),
    "neck": (0.0, 0.290, -0.012),
    "head": (0.0, 0.352, 0.040),
    "left_collar": (0.075, 0.194, 0.015),
    "left_shoulder": (0.171, 0.224, -0.006),
    "left_elbow": (0.432, 0.212, -0.031),
    "left_wrist": (0.688, 0.219, -0.028),
    "left_hand": (0.773, 0.210, -0.043),
}
J = JOINT_INDEX
MIRROR = list(mirror_index())
KEYS = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table")


def design_joints() -> np.ndarray:
    out = np.full((NUM_JOINTS, 3), np.nan)
    for name, p in DESIGN.items():
        out[J[name]] = p
        out[MIRROR[J[name]]] = (-p[0], p[1], p[2])
    return out


@pytest.fixture(scope="module")
def body() -> BodyModel:
    return load_body_model()


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    with np.load(DEFAULT_BODY_MODEL) as data:
        return {k: data[k] for k in data.files}


def zero_pose(batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(batch, 3), torch.zeros(batch, 69)


def shaped_vertices(body: BodyModel, betas: torch.Tensor) -> np.ndarray:
    """(B, V, 3) rest-pose vertices for betas (B, K), float64."""
    return body(*zero_pose(len(betas)), betas).vertices.double().numpy()


def one_beta(k: int, value: float) -> torch.Tensor:
    b = torch.zeros(1, 10)
    b[0, k] = value
    return b


def face_normals(v: np.ndarray, faces: np.ndarray) -> np.ndarray:
    t = v[..., faces, :]
    return np.cross(t[..., 1, :] - t[..., 0, :], t[..., 2, :] - t[..., 0, :])


# ----------------------------------------------------------------------------- file and loading
def test_loads_through_smplx(body):
    assert isinstance(body.smpl, smplx.SMPL)
    assert 2000 <= body.num_vertices <= 8000
    assert body.faces.dtype == np.int64 and body.faces.shape[1] == 3
    assert body.faces.max() < body.num_vertices
    assert body.num_betas == 10
    assert body.parents == SMPL_PARENTS
    assert body.path == DEFAULT_BODY_MODEL
    assert re.fullmatch(r"posesynth_neutral\.npz:[0-9a-f]{16}", body.identity)


def test_file_is_small_and_in_smpl_format(arrays):
    assert DEFAULT_BODY_MODEL.stat().st_size < 3_000_000
    V = arrays["v_template"].shape[0]
    assert arrays["v_template"].shape == (V, 3)
    assert arrays["shapedirs"].shape == (V, 3, 10)
    assert arrays["posedirs"].shape == (V, 3, 207) and not arrays["posedirs"].any()
    assert arrays["J_regressor"].shape == (NUM_JOINTS, V)
    assert arrays["weights"].shape == (V, NUM_JOINTS)
    kintree = arrays["kintree_table"]
    assert kintree[0, 0] == 4294967295
    assert tuple(kintree[0, 1:]) == SMPL_PARENTS[1:] and tuple(kintree[1]) == tuple(range(NUM_JOINTS))


def test_committed_file_is_what_the_build_script_makes(arrays, monkeypatch):
    path = DEFAULT_BODY_MODEL.parents[1] / "build_body_model.py"
    spec = importlib.util.spec_from_file_location("build_body_model", path)
    script = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "build_body_model", script)  # dataclasses look their module up
    spec.loader.exec_module(script)
    built = script.build()
    assert set(built) == set(arrays)
    for key, value in built.items():  # floats to 1e-6: other BLAS/scipy builds round differently
        if value.dtype.kind == "f":
            np.testing.assert_allclose(value, arrays[key], atol=1e-6, rtol=0, err_msg=key)
        else:
            np.testing.assert_array_equal(value, arrays[key], err_msg=key)


def test_skinning_weights_and_regressor_are_convex(arrays):
    for key in ("weights", "J_regressor"):  # rows: vertices (weights), joints (regressor)
        rows = arrays[key].astype(np.float64)
        assert rows.min() >= 0
        np.testing.assert_allclose(rows.sum(axis=1), 1.0, atol=1e-5)


def test_shells_are_closed_with_outward_normals(arrays):
    v, f = arrays["v_template"].astype(np.float64), arrays["f"].astype(np.int64)
    assert (np.linalg.norm(face_normals(v, f), axis=1) > 1e-8).all()  # no degenerate faces
    # every directed edge once and its reverse once: closed, consistently wound shells
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    directed = set(map(tuple, edges))
    assert len(directed) == len(edges)
    assert all((b, a) in directed for a, b in directed)
    n_comp, label = connected_components(
        coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(len(v), len(v))), directed=False
    )
    face_label = label[f[:, 0]]
    signed = np.einsum("fc,fc->f", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])) / 6.0
    volumes = np.bincount(face_label, weights=signed, minlength=n_comp)
    assert n_comp > 10 and (volumes > 0).all()  # outward normals


# ----------------------------------------------------------------------------- rest shape
def test_regressed_rest_joints_are_the_design_joints(body):
    rest = body.rest_joints(torch.zeros(1, 10))[0].double().numpy()
    np.testing.assert_allclose(rest, design_joints(), atol=1e-3)
    posed = body(*zero_pose()).joints[0].double().numpy()
    np.testing.assert_allclose(posed, rest, atol=1e-6)


def test_template_stands_in_smpl_frame(arrays):
    v = arrays["v_template"].astype(np.float64)
    assert v[:, 1].min() == pytest.approx(-1.19, abs=0.02)  # soles
    assert v[:, 1].max() - v[:, 1].min() == pytest.approx(1.70, abs=0.03)  # standing height
    assert v[:, 0].max() > 0.8 and v[:, 0].min() < -0.8  # T-pose: arms along +-x


def test_template_is_left_right_symmetric(arrays):
    v = arrays["v_template"].astype(np.float64)
    dist, _ = cKDTree(v).query(v * (-1.0, 1.0, 1.0))
    assert dist.max() < 1e-5
    joints = arrays["J_regressor"].astype(np.float64) @ v
    np.testing.assert_allclose(joints[MIRROR] * (-1.0, 1.0, 1.0), joints, atol=1e-6)


def test_body_faces_plus_z(body, arrays):
    v = arrays["v_template"].astype(np.float64)
    head = v[v[:, 1] > 0.3]
    nose = head[np.argmax(head[:, 2])]
    assert abs(nose[0]) < 0.01 and nose[2] > 0.13  # the nose points to +z
    feet = v[v[:, 1] < -1.12]
    assert feet[:, 2].max() > 0.15 and feet[:, 2].min() > -0.12  # toes forward, short heels
    marks = body.landmarks
    assert v[marks["nose"], 2] > 0.13
    assert v[marks["leye"], 0] > 0 > v[marks["reye"], 0]
    assert v[marks["LBigToe"], 2] > v[marks["LHeel"], 2] + 0.2


# ----------------------------------------------------------------------------- shape space
def test_rest_joints_linear_in_betas(body):
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 10, generator=g), torch.randn(4, 10, generator=g)
    zero = body.rest_joints(torch.zeros(4, 10))
    lhs = body.rest_joints(a + b) - zero
    rhs = (body.rest_joints(a) - zero) + (body.rest_joints(b) - zero)
    torch.testing.assert_close(lhs, rhs, atol=1e-5, rtol=0)


def test_rest_joints_equal_smplx_joints_for_any_betas(body):
    betas = torch.randn(3, 10, generator=torch.Generator().manual_seed(1)) * 2
    torch.testing.assert_close(body(*zero_pose(3), betas).joints, body.rest_joints(betas), atol=1e-5, rtol=0)


def test_joint_shape_basis(body):
    template, dirs = body.joint_shape_basis()
    assert template.shape == (NUM_JOINTS, 3) and dirs.shape == (NUM_JOINTS, 3, 10)
    betas = torch.randn(2, 10, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(body.rest_joints(betas), template + torch.einsum("jck,bk->bjc", dirs, betas))


def test_rest_joints_differentiable_and_padded(body):
    betas = torch.zeros(1, 3, requires_grad=True)
    body.rest_joints(betas)[0, J["left_knee"], 1].backward()
    torch.testing.assert_close(betas.grad[0], body.Jdirs[J["left_knee"], 1, :3])
    assert betas.grad[0, 0] != 0  # stature moves the knee
    padded = torch.tensor([[1.0] * 3 + [0.0] * 7])
    torch.testing.assert_close(body.rest_joints(torch.ones(1, 3)), body.rest_joints(padded))
    with pytest.raises(ValueError, match="betas"):
        body.rest_joints(torch.zeros(1, 11))
    as64 = body.rest_joints(torch.ones(1, 10, dtype=torch.float64))
    assert as64.dtype == torch.float64
    torch.testing.assert_close(as64.float(), body.rest_joints(torch.ones(1, 10)))


def dist(joints: torch.Tensor, a: str, b: str) -> float:
    return float((joints[0, J[a]] - joints[0, J[b]]).norm())


def change(body: BodyModel, k: int, fn, value: float = 1.0) -> float:
    """How much ``fn(joints)`` changes per ``value`` of beta ``k``."""
    return fn(body.rest_joints(one_beta(k, value))) - fn(body.rest_joints(torch.zeros(1, 10)))


def unchanged(body: BodyModel, k: int, names) -> bool:
    d = body.rest_joints(one_beta(k, 2.0)) - body.rest_joints(torch.zeros(1, 10))
    return bool(d[0, [J[n] for n in names]].abs().max() < 1e-6)


UPPER = ("pelvis", "spine1", "spine2", "spine3", "neck", "head", "left_collar", "left_shoulder", "left_wrist")
LEGS = ("left_hip", "right_hip", "left_knee", "left_ankle", "right_foot")


def test_beta0_stature_scales_the_height(body):
    v0, v1 = shaped_vertices(body, torch.cat([torch.zeros(1, 10), one_beta(0, 1.0)]))
    assert np.ptp(v1[:, 1]) - np.ptp(v0[:, 1]) == pytest.approx(0.07, abs=1e-4)
    assert change(body, 0, lambda j: float(j[0, J["head"], 1])) > 0.05
    assert change(body, 0, lambda j: dist(j, "left_hip", "left_knee")) > 0


def test_beta1_girth_widens_without_moving_joints(body):
    assert unchanged(body, 1, list(DESIGN))
    v0, v1 = shaped_vertices(body, torch.cat([torch.zeros(1, 10), one_beta(1, 1.0)]))
    waist = (np.abs(v0[:, 1] - DESIGN["spine1"][1]) < 0.01) & (np.abs(v0[:, 0]) < 0.2)
    assert np.ptp(v1[waist, 0]) / np.ptp(v0[waist, 0]) == pytest.approx(1.10, abs=0.01)


@pytest.mark.parametrize(
    ("k", "a", "b", "per_unit", "fixed"),
    [
        (2, "left_hip", "left_knee", 0.025, UPPER + ("left_hip",)),
        (3, "left_knee", "left_ankle", 0.025, UPPER + ("left_hip", "left_knee")),
        (4, "left_shoulder", "left_elbow", 0.02, LEGS + ("spine3", "neck", "left_collar", "left_shoulder")),
        (5, "left_elbow", "left_wrist", 0.015, LEGS + ("spine3", "neck", "left_shoulder", "left_elbow")),
        (6, "left_collar", "left_shoulder", 0.02, LEGS + ("spine3", "neck", "head", "left_collar")),
        (9, "neck", "head", 0.0075, LEGS + ("spine3", "left_collar", "left_shoulder")),
    ],
)
def test_bone_length_betas(body, k, a, b, per_unit, fixed):
    assert change(body, k, lambda j: dist(j, a, b)) == pytest.approx(per_unit, abs=1e-4)
    right = (a.replace("left_", "right_"), b.replace("left_", "right_"))
    assert change(body, k, lambda j: dist(j, *right)) == pytest.approx(per_unit, abs=1e-4)
    assert unchanged(body, k, fixed)


def test_beta2_thigh_length_leaves_everything_above_the_hips(body, arrays):
    v0, v1 = shaped_vertices(body, torch.cat([torch.zeros(1, 10), one_beta(2, 3.0)]))
    above = arrays["v_template"][:, 1] > -0.2
    assert np.abs(v1[above] - v0[above]).max() < 1e-6
    assert (v1[:, 1] - v0[:, 1]).min() < -0.07  # the feet go down


def test_beta6_shoulder_width(body):
    per_unit = change(body, 6, lambda j: dist(j, "left_shoulder", "right_shoulder"))
    assert 0.035 < per_unit < 0.041
    # the range the retargeting needs: 0.20 m to 0.51 m between the shoulders
    narrow, broad = body.rest_joints(one_beta(6, -3.5)), body.rest_joints(one_beta(6, 4.0))
    assert dist(narrow, "left_shoulder", "right_shoulder") == pytest.approx(0.21, abs=0.015)
    assert dist(broad, "left_shoulder", "right_shoulder") == pytest.approx(0.49, abs=0.02)


def test_beta7_hip_width(body):
    assert change(body, 7, lambda j: dist(j, "left_hip", "right_hip")) == pytest.approx(0.03, abs=1e-4)
    assert change(body, 7, lambda j: dist(j, "left_hip", "left_knee")) == pytest.approx(0.0, abs=1e-6)
    assert unchanged(body, 7, UPPER)


def test_beta8_torso_length(body):
    assert change(body, 8, lambda j: float(j[0, J["neck"], 1] - j[0, J["pelvis"], 1])) == pytest.approx(0.03, abs=1e-4)
    assert change(body, 8, lambda j: float(j[0, J["head"], 1])) == pytest.approx(0.03, abs=1e-4)
    assert 0 < change(body, 8, lambda j: float(j[0, J["spine2"], 1])) < 0.03
    assert unchanged(body, 8, LEGS + ("pelvis",))


def test_beta9_neck_length(body):
    assert change(body, 9, lambda j: dist(j, "spine3", "neck")) == pytest.approx(0.0075, abs=1e-4)


def test_mesh_never_turns_inside_out_across_the_shape_space(body, arrays):
    v0 = arrays["v_template"].astype(np.float64)
    n0 = face_normals(v0, body.faces)
    single = torch.stack([one_beta(k, s)[0] for k in range(10) for s in (-5.0, 5.0)])
    corners = 3.0 * torch.sign(torch.randn(24, 10, generator=torch.Generator().manual_seed(3)))
    n = face_normals(shaped_vertices(body, torch.cat([single, corners])), body.faces)
    assert (np.einsum("bfc,fc->bf", n, n0) > 0).all()


# ----------------------------------------------------------------------------- posing
def random_pose(batch: int, seed: int, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    go = torch.randn(batch, 3, generator=g) * 0.8
    bp = torch.randn(batch, 69, generator=g) * 0.4
    betas = (torch.rand(batch, 10, generator=g) - 0.5) * 6
    transl = torch.randn(batch, 3, generator=g)
    return go.to(dtype), bp.to(dtype), betas.to(dtype), transl.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_posesynth_fk_agrees_with_smplx(dtype):
    body = load_body_model(dtype=dtype)
    go, bp, betas, transl = random_pose(8, 4, dtype)
    out = body(go, bp, betas, transl)
    assert isinstance(out, BodyOutput)
    assert out.vertices.shape == (8, body.num_vertices, 3) and out.joints.shape == (8, NUM_JOINTS, 3)
    local = axis_angle_to_matrix(torch.cat([go, bp], 1).reshape(8, NUM_JOINTS, 3))
    _, joints = forward_kinematics(local, body.rest_joints(betas))
    torch.testing.assert_close(joints + transl[:, None], out.joints, atol=1e-5, rtol=0)
    rot = body.forward_rotmats(local[:, 0], local[:, 1:], betas, transl)
    torch.testing.assert_close(rot.joints, out.joints, atol=1e-5, rtol=0)
    torch.testing.assert_close(rot.vertices, out.vertices, atol=1e-5, rtol=0)


def test_bending_the_left_elbow_moves_only_the_left_hand(body, arrays):
    weights = arrays["weights"]
    bp = torch.zeros(1, 23, 3)
    bp[0, J["left_elbow"] - 1] = torch.tensor([0.0, -1.57, 0.0])
    v0 = body(*zero_pose()).vertices[0]
    v1 = body(torch.zeros(1, 3), bp.reshape(1, 69)).vertices[0]
    moved = (v1 - v0).norm(dim=-1).numpy()
    left = weights[:, [J["left_wrist"], J["left_hand"]]].sum(1) > 0.99
    right = weights[:, [J["right_wrist"], J["right_hand"]]].sum(1) > 0.99
    assert left.sum() > 100 and right.sum() > 100
    assert moved[left].min() > 0.1
    assert moved[right].max() < 1e-6


@pytest.mark.parametrize(
    ("joint", "rotvec"), [("left_elbow", (0.0, -1.57, 0.0)), ("right_knee", (1.57, 0.0, 0.0))]
)
def test_bending_90_degrees_does_not_rip_the_mesh(body, joint, rotvec):
    faces = body.faces
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    bp = torch.zeros(1, 23, 3)
    bp[0, J[joint] - 1] = torch.tensor(rotvec)
    v0 = body(*zero_pose()).vertices[0].double().numpy()
    v1 = body(torch.zeros(1, 3), bp.reshape(1, 69)).vertices[0].double().numpy()
    ratio = np.linalg.norm(v1[edges[:, 0]] - v1[edges[:, 1]], axis=1) / np.linalg.norm(
        v0[edges[:, 0]] - v0[edges[:, 1]], axis=1
    )
    assert 0.3 < ratio.min() and ratio.max() < 2.5


def test_to_device_keeps_results(body):
    moved = body.to("cpu")
    assert moved.device.type == "cpu"
    torch.testing.assert_close(moved.rest_joints(torch.zeros(1, 10)), body.rest_joints(torch.zeros(1, 10)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(body):
    gpu = load_body_model(device="cuda")
    go, bp, betas, transl = random_pose(4, 6)
    out = gpu(go, bp, betas, transl)  # CPU inputs are moved to the model's device
    assert out.vertices.device.type == "cuda"
    torch.testing.assert_close(out.joints.cpu(), body(go, bp, betas, transl).joints, atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------- bad files
def write_npz(path, arrays, **changes):
    data = {k: v for k, v in arrays.items() if k in KEYS}
    for k, v in changes.items():
        if v is None:
            del data[k]
        else:
            data[k] = v
    np.savez(path, **data)
    return path


def test_pkl_copy_loads_like_the_npz(body, arrays, tmp_path):
    path = tmp_path / "my_smpl.pkl"
    with open(path, "wb") as f:
        pickle.dump({k: arrays[k] for k in KEYS}, f)
    other = load_body_model(path)
    assert other.identity.startswith("my_smpl.pkl:") and other.identity != body.identity
    go, bp, betas, transl = random_pose(2, 5)
    torch.testing.assert_close(other(go, bp, betas, transl).vertices, body(go, bp, betas, transl).vertices)


def test_npz_with_float64_arrays_loads(body, arrays, tmp_path):
    f64 = {k: (v.astype(np.float64) if v.dtype == np.float32 else v) for k, v in arrays.items() if k in KEYS}
    other = load_body_model(write_npz(tmp_path / "f64.npz", f64))
    torch.testing.assert_close(other.rest_joints(torch.ones(1, 10)), body.rest_joints(torch.ones(1, 10)))


def test_pkl_that_needs_chumpy_says_so(tmp_path):
    if importlib.util.find_spec("chumpy") is not None:  # pragma: no cover
        pytest.skip("chumpy is installed")
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(b"\x80\x02cchumpy.ch\nCh\nq\x00.")  # a pickle that imports chumpy.ch.Ch
    with pytest.raises(BodyModelError, match=r"SMPL_NEUTRAL\.pkl.*chumpy.*npz"):
        load_body_model(path)


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        ("corrupt.npz", "corrupt", "not a readable"),
        ("missing.npz", {"weights": None}, r"missing keys \['weights'\]"),
        ("kintree.npz", "kintree", "kintree_table"),
        ("shape.npz", "shape", "J_regressor has shape"),
        ("model.obj", "suffix", "unknown body model format"),
        ("nowhere.npz", "absent", "no such body model file"),
    ],
)
def test_bad_files_raise_body_model_error_naming_the_file(arrays, tmp_path, name, change, message):
    path = tmp_path / name
    if change == "corrupt":
        path.write_bytes(b"PK\x03\x04 this is not a zip archive")
    elif change == "kintree":
        kintree = arrays["kintree_table"].copy()
        kintree[0, 5] = 1
        write_npz(path, arrays, kintree_table=kintree)
    elif change == "shape":
        write_npz(path, arrays, J_regressor=arrays["J_regressor"][:, :-1])
    elif change == "suffix":
        path.write_text("v 0 0 0\n")
    elif isinstance(change, dict):
        write_npz(path, arrays, **change)
    with pytest.raises(BodyModelError, match=re.escape(name) + ".*" + message) as info:
        load_body_model(path)
    assert isinstance(info.value, ValueError)
