"""The mocap readers on real clips: the committed fixtures, and the full pool when it is here."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from posesynth.mocap import (
    MocapFormatError,
    Motion,
    find_asf,
    find_motion_files,
    read_amc,
    read_asf,
    read_bvh,
    read_motion,
)

FIXTURES = Path(__file__).parent / "fixtures"
HDM_AMC = FIXTURES / "hdm05/kickLFront1Reps/HDM_bd_kickLFront1Reps_003_120.amc"
HDM_ASF = FIXTURES / "hdm05/HDM_bd.asf"
BANDAI_1 = FIXTURES / "bandai_namco/dataset-1/dataset-1_dash_normal_001.bvh"
BANDAI_2 = FIXTURES / "bandai_namco/dataset-2/dataset-2_raise-up-left-hand_active_003.bvh"
POOL = Path(__file__).resolve().parents[2] / "shared" / "data" / "mocap"

HDM_JOINTS = (
    "root lhipjoint lfemur ltibia lfoot ltoes rhipjoint rfemur rtibia rfoot rtoes lowerback "
    "upperback thorax lowerneck upperneck head lclavicle lhumerus lradius lwrist lhand lfingers "
    "lthumb rclavicle rhumerus rradius rwrist rhand rfingers rthumb"
).split()
BANDAI_JOINTS = (
    "joint_Root Hips Spine Chest Neck Head Shoulder_L UpperArm_L LowerArm_L Hand_L Shoulder_R "
    "UpperArm_R LowerArm_R Hand_R UpperLeg_L LowerLeg_L Foot_L Toes_L UpperLeg_R LowerLeg_R "
    "Foot_R Toes_R"
).split()


# ----------------------------------------------------------------------------------------------
# Checks every real clip must pass


def body_joints(m: Motion) -> list[int]:
    """Joints of the body: Bandai's static dummy ``joint_Root`` is not part of it."""
    return [j for j, n in enumerate(m.joint_names) if n != "joint_Root"]


def bones(m: Motion) -> list[tuple[int, int]]:
    """(child, parent) pairs that are real bones (joint_Root -> Hips carries the global translation)."""
    return [(j, p) for j, p in enumerate(m.parents) if p >= 0 and m.joint_names[p] != "joint_Root"]


def check_human_clip(m: Motion, head: str, min_height: float = 1.3) -> None:
    T, J = m.num_frames, m.num_joints
    assert m.positions.shape == (T, J, 3) and m.positions.dtype == np.float64
    assert m.rotations.shape == (T, J, 3, 3) and m.rotations.dtype == np.float64
    assert np.isfinite(m.positions).all() and np.isfinite(m.rotations).all()
    assert all(p < j for j, p in enumerate(m.parents))
    body = body_joints(m)
    floor = m.positions[:, body, 1].min(axis=1)  # (T,) lowest body joint per frame
    # Standing height: the head above the lowest joint, at the most upright frame.
    height = (m.positions[:, m.joint(head), 1] - floor).max()
    assert min_height <= height <= 1.9, height
    # Feet on the floor (y = 0) at some frame.
    assert np.abs(floor).min() < 0.05, floor.min()
    # Bone lengths constant over frames.
    for j, p in bones(m):
        length = np.linalg.norm(m.positions[:, j] - m.positions[:, p], axis=-1)
        np.testing.assert_allclose(length, length[0], rtol=1e-6, atol=1e-9, err_msg=m.joint_names[j])
    # Rotations are proper rotations.
    R = m.rotations
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape), atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-9)
    # Rotations agree with positions: each bone is constant in its parent's frame.
    for j, p in bones(m):
        frame_of = p if m.format == "bvh" else j  # BVH: parent's frame; AMC: R_bone moves its own bone
        local = np.einsum("tji,tj->ti", R[:, frame_of], m.positions[:, j] - m.positions[:, p])
        np.testing.assert_allclose(local, np.broadcast_to(local[0], local.shape), atol=1e-9)


# ----------------------------------------------------------------------------------------------
# HDM05 (ASF/AMC)


@pytest.fixture(scope="module")
def hdm() -> Motion:
    return read_motion(HDM_AMC)


def test_hdm05_reads_with_automatic_asf(hdm: Motion) -> None:
    assert find_asf(HDM_AMC) == HDM_ASF
    assert hdm.format == "amc"
    assert hdm.joint_names == tuple(HDM_JOINTS)
    assert hdm.num_frames == 151
    assert hdm.fps == 120.0
    assert hdm.duration == pytest.approx(151 / 120)
    assert hdm.length_scale == pytest.approx(0.0254 / 0.45)
    assert hdm.parents[hdm.joint("lfemur")] == hdm.joint("lhipjoint")
    assert hdm.parents[hdm.joint("lthumb")] == hdm.joint("lwrist")


def test_hdm05_is_a_human(hdm: Motion) -> None:
    check_human_clip(hdm, head="head")
    # The README: standing height about 1.65-1.71 m with the feet at y ~ 0.
    assert 1.6 < hdm.positions[0, :, 1].max() < 1.75


def test_hdm05_bone_lengths_match_the_asf(hdm: Motion) -> None:
    asf = read_asf(HDM_ASF)
    scale = 0.0254 / 0.45
    for bone in asf.bones:
        j = hdm.joint(bone.name)
        length = np.linalg.norm(hdm.positions[0, j] - hdm.positions[0, hdm.parents[j]])
        assert length == pytest.approx(bone.length * scale, rel=1e-9)


def test_hdm05_left_kick_moves_the_left_foot(hdm: Motion) -> None:
    travel = {n: np.ptp(hdm.positions[:, hdm.joint(n)], axis=0).max() for n in ("lfoot", "rfoot")}
    assert travel["lfoot"] > 1.0 > 0.2 > travel["rfoot"]


def test_hdm05_explicit_skeleton_and_scale(hdm: Motion) -> None:
    m = read_motion(HDM_AMC, skeleton=HDM_ASF, length_scale=1.0)
    np.testing.assert_allclose(m.positions * (0.0254 / 0.45), hdm.positions, atol=1e-12)
    np.testing.assert_allclose(m.rotations, hdm.rotations, atol=1e-12)
    m2 = read_amc(HDM_AMC, read_asf(HDM_ASF), fps=60)
    assert m2.fps == 60.0
    np.testing.assert_allclose(m2.positions, hdm.positions)


# ----------------------------------------------------------------------------------------------
# Bandai Namco (BVH)


def test_bandai_dataset2_reads() -> None:
    m = read_motion(BANDAI_2)
    assert m.format == "bvh"
    assert m.joint_names == tuple(BANDAI_JOINTS)  # all End Sites are zero-length: left out
    assert m.parents[m.joint("UpperLeg_L")] == m.joint("Hips")
    assert m.parents[m.joint("Shoulder_R")] == m.joint("Chest")
    assert m.num_frames == 37
    assert m.fps == 30.0
    assert m.length_scale == 0.01  # inferred: centimetres
    check_human_clip(m, head="Head")
    # joint_Root is a static dummy at the origin.
    np.testing.assert_array_equal(m.positions[:, 0], 0.0)
    # raise-up-left-hand: the left hand travels, the right one hardly.
    travel = {n: np.ptp(m.positions[:, m.joint(n)], axis=0).max() for n in ("Hand_L", "Hand_R")}
    assert travel["Hand_L"] > 0.5 > 0.15 > travel["Hand_R"]


def test_bandai_dataset1_variant_with_end_sites() -> None:
    # One of the 11 dataset-1 "normal" files whose End Sites have a length: they become joints.
    m = read_motion(BANDAI_1)
    ends = ["Head_end", "Hand_L_end", "Hand_R_end", "Toes_L_end", "Toes_R_end"]
    assert [n for n in m.joint_names if n not in BANDAI_JOINTS] == ends
    assert m.num_joints == 27
    assert m.num_frames == 20
    assert m.fps == 30.0
    j = m.joint("Head_end")
    assert m.parents[j] == m.joint("Head")
    np.testing.assert_allclose(m.rotations[:, j], m.rotations[:, m.joint("Head")])
    np.testing.assert_allclose(np.linalg.norm(m.positions[:, j] - m.positions[:, m.joint("Head")], axis=-1), 0.10)
    # A dash: the body leans, so the head joint (base of the skull) stays lower than when standing.
    check_human_clip(m, head="Head", min_height=1.2)


def test_bvh_length_scale_given() -> None:
    cm = read_bvh(BANDAI_2)
    raw = read_bvh(BANDAI_2, length_scale=1.0)
    assert raw.length_scale == 1.0
    np.testing.assert_allclose(raw.positions * 0.01, cm.positions, atol=1e-12)
    np.testing.assert_array_equal(raw.rotations, cm.rotations)
    with pytest.raises(ValueError, match="length_scale"):
        read_bvh(BANDAI_2, length_scale=-1.0)


# ----------------------------------------------------------------------------------------------
# Motion and MocapFormatError


def test_motion_joint_lookup_error_lists_names(hdm: Motion) -> None:
    assert hdm.joint("lfemur") == 2
    with pytest.raises(MocapFormatError, match="no joint named 'pelvis'; joints are: root, lhipjoint"):
        hdm.joint("pelvis")


def test_motion_checks_shapes() -> None:
    with pytest.raises(ValueError, match="shapes"):
        Motion(Path("x.bvh"), "bvh", ("a",), (-1,), np.zeros((2, 2, 3)), np.zeros((2, 1, 3, 3)), 30.0)
    with pytest.raises(ValueError, match="parent"):
        Motion(Path("x.bvh"), "bvh", ("a", "b"), (1, -1), np.zeros((2, 2, 3)), np.zeros((2, 2, 3, 3)), 30.0)


def test_error_format_and_pickling() -> None:
    e = MocapFormatError("a/b.bvh", "expected 132 values per frame, found 120", line=123, frame=57)
    assert str(e) == "a/b.bvh:123: expected 132 values per frame, found 120 (frame 57)"
    assert isinstance(e, ValueError)
    e2 = pickle.loads(pickle.dumps(e))
    assert (str(e2), e2.path, e2.line, e2.frame) == (str(e), Path("a/b.bvh"), 123, 57)
    assert str(MocapFormatError("c.amc", "empty AMC file")) == "c.amc: empty AMC file"


def test_find_motion_files() -> None:
    found = find_motion_files(FIXTURES)
    assert found == sorted([HDM_AMC, BANDAI_1, BANDAI_2])


# ----------------------------------------------------------------------------------------------
# The full training pool (../shared/data/mocap), when it is here

needs_pool = pytest.mark.skipif(
    not POOL.is_dir(), reason=f"training pool not found at {POOL} (tests that read it are skipped)"
)


@needs_pool
@pytest.mark.parametrize(
    "relpath, head, joints",
    [
        ("hdm05/depositFloorR/HDM_dg_depositFloorR_013_120.amc", "head", 31),  # another actor's ASF
        ("hdm05/jogLeftCircle4StepsRstart/HDM_bk_jogLeftCircle4StepsRstart_003_120.amc", "head", 31),
        ("bandai_namco/dataset-1/dataset-1_walk_happy_001.bvh", "Head", 22),
        ("bandai_namco/dataset-2/dataset-2_walk_normal_001.bvh", "Head", 22),
    ],
)
def test_pool_file(relpath: str, head: str, joints: int) -> None:
    path = POOL / relpath
    if not path.is_file():
        pytest.skip(f"{relpath} is not in the pool at {POOL}")
    m = read_motion(path)
    assert m.num_joints == joints
    assert m.fps == (120.0 if m.format == "amc" else 30.0)
    check_human_clip(m, head=head)


@needs_pool
def test_whole_pool_parses() -> None:
    # The README: 539 motion files, 95,788 frames, all parse.
    files = find_motion_files(POOL)
    frames = sum(read_motion(f).num_frames for f in files)
    assert (len(files), frames) == (539, 95_788)
