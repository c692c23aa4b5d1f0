"""3D keypoint arrays (.npz / .h5) as a positions-only source, retargeted by IK."""

import h5py
import numpy as np
import pytest

from conftest import BANDAI_DASH
from posesynth.mocap import MocapFormatError, read_motion
from posesynth.mocap.keypoints import read_keypoints
from posesynth.prepare import PrepareOptions, load_clip
from posesynth.retarget import retarget, retarget_errors
from posesynth.rig_map import detect_rig, load_rig_map

H36M = load_rig_map("h36m17")


def h36m_from_bandai() -> np.ndarray:
    """(T, 17, 3) Human3.6M-layout keypoints made from a real Bandai clip, in metres."""
    motion = read_motion(BANDAI_DASH)
    p = {n: motion.positions[:, motion.joint(n)] for n in motion.joint_names}
    hips = p["Hips"]
    cols = {
        "pelvis": hips, "right_hip": p["UpperLeg_R"], "right_knee": p["LowerLeg_R"], "right_ankle": p["Foot_R"],
        "left_hip": p["UpperLeg_L"], "left_knee": p["LowerLeg_L"], "left_ankle": p["Foot_L"],
        "spine": 0.5 * (p["Spine"] + p["Chest"]), "thorax": p["Neck"], "neck_nose": p["Head"],
        "head": p["Head"] + np.array([0.0, 0.12, 0.0]), "left_shoulder": p["UpperArm_L"],
        "left_elbow": p["LowerArm_L"], "left_wrist": p["Hand_L"], "right_shoulder": p["UpperArm_R"],
        "right_elbow": p["LowerArm_R"], "right_wrist": p["Hand_R"],
    }
    return np.stack([cols[n] for n in H36M.joint_names], axis=1)


def test_h36m_keypoints_retarget_accurately(tmp_path, shape_basis):
    path = tmp_path / "clip.npz"
    np.savez(path, positions_3d=h36m_from_bandai() * 1000.0, layout="h36m17", fps=30.0)  # millimetres
    clip = load_clip(path, tmp_path, PrepareOptions())
    assert clip.frame_rotations is None and clip.rig == "h36m17"
    errors = retarget_errors(retarget(clip.targets, *shape_basis))
    assert errors["limb_angle_deg_median"] < 1.0
    assert errors["shared_joint_error_mm"] < 20.0


def test_h5_with_joint_names_and_z_up(tmp_path):
    kp = h36m_from_bandai()
    z_up = np.stack([kp[..., 0], -kp[..., 2], kp[..., 1]], -1)
    path = tmp_path / "clip.h5"
    with h5py.File(path, "w") as f:
        f["keypoints3d"] = z_up
        f["joint_names"] = np.array(H36M.joint_names, dtype="S")
        f.attrs["fps"] = 30.0
    clip = read_keypoints(path, up="z")
    np.testing.assert_allclose(clip.positions, kp, atol=1e-9)
    assert clip.fps == 30.0 and clip.length_scale == 1.0
    assert detect_rig(clip.joint_names).name == "h36m17"


@pytest.mark.parametrize(
    "arrays, kwargs, message",
    [
        ({"positions_3d": np.zeros((4, 17, 2))}, {"layout": "h36m17"}, "(N, J, 3)"),
        ({"positions_3d": np.zeros((4, 16, 3))}, {"layout": "h36m17"}, "17 joint names for an array of 16"),
        ({"positions_3d": np.zeros((4, 17, 3))}, {}, "no joint_names"),
        ({"a": np.zeros((4, 17, 3)), "b": np.zeros((4, 17, 3))}, {"layout": "h36m17"}, "expected one"),
        ({"positions_3d": np.zeros((4, 17, 3))}, {"layout": "nope"}, "unknown rig"),
    ],
)
def test_bad_keypoint_files_name_the_problem(tmp_path, arrays, kwargs, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(MocapFormatError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        read_keypoints(path, **kwargs)
    assert str(path) in str(info.value)


def test_nan_keypoints_name_the_frame(tmp_path):
    kp = h36m_from_bandai()
    kp[5, 3, 1] = np.nan
    path = tmp_path / "nan.npz"
    np.savez(path, positions_3d=kp, layout="h36m17")
    with pytest.raises(MocapFormatError, match=r"frame 5") as info:
        read_keypoints(path)
    assert "joint 3" in str(info.value)


def test_pickled_keypoint_files_are_refused(tmp_path):
    path = tmp_path / "pickled.npz"
    np.savez(path, positions_3d=np.array([{"S1": np.zeros((3, 17, 3))}], dtype=object))
    with pytest.raises(MocapFormatError, match="pickled"):
        read_keypoints(path, layout="h36m17")
