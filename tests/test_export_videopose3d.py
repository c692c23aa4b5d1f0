"""The VideoPose3D family: ``--format videopose3d`` (posesynth's cameras) and ``--format h36m``
(Human3.6M's layout and cameras), read back and checked against the store, and the 2D against an
independent port of VideoPose3D's camera code (``common/camera.py``, ``common/quaternion.py``)."""

import tomllib
from importlib import resources

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from posesynth.cli import main
from posesynth.export import ExportError, export_store
from posesynth.export.h36m import to_h36m_world
from posesynth.keypoint_sets import KEYPOINT_SETS
from posesynth.outputs import OutputError
from posesynth.store import open_store
from test_sampling import read_all, sample_store, training_store

N = 1500  # rows of the shared sample store (two views, labels 0 and 2)
H36M_SUBJECTS = ["S1", "S5", "S6", "S7", "S8", "S9", "S11"]
# Where VideoPose3D's 17 Human3.6M joints sit among its 32 (common/h36m_dataset.py keeps them).
H36M_INDEX = {"pelvis": 0, "right_hip": 1, "right_knee": 2, "right_ankle": 3, "left_hip": 6, "left_knee": 7,
              "left_ankle": 8, "spine": 12, "thorax": 13, "neck_nose": 14, "head": 15, "left_shoulder": 17,
              "left_elbow": 18, "left_wrist": 19, "right_shoulder": 25, "right_elbow": 26, "right_wrist": 27}


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return sample_store(tmp_path_factory)


@pytest.fixture(scope="module")
def ref(samples):
    return read_all(samples)


@pytest.fixture(scope="module")
def vp_paths(samples, tmp_path_factory):
    """--format videopose3d, 3D h36m17 with 2D coco17: {file kind: path}."""
    paths = export_store(samples, "videopose3d", tmp_path_factory.mktemp("vp"), name="synth",
                         keypoint_set="h36m17", keypoint_set_2d="coco17")
    return dict(zip(("3d", "2d", "custom"), paths))


@pytest.fixture(scope="module")
def vp(vp_paths):
    """{file kind: np.load of it} of ``vp_paths``."""
    return {kind: np.load(p, allow_pickle=True) for kind, p in vp_paths.items()}


@pytest.fixture(scope="module")
def h36m(samples, tmp_path_factory):
    """--format h36m with h36m17 2D: {file kind: np.load of it}."""
    paths = export_store(samples, "h36m", tmp_path_factory.mktemp("h36m"), name="synth")
    return {kind: np.load(p, allow_pickle=True) for kind, p in zip(("3d", "2d"), paths)}


def item(npz, key):
    return npz[key].item()


def each_action(npz):
    """(subject, action, rows) of a file's sample_index."""
    return [(s, a, rows) for s, actions in item(npz, "sample_index").items() for a, rows in actions.items()]


# ---------------------------------------------------------------------------- videopose3d
def test_videopose3d_file_names_carry_the_2d_set(samples, tmp_path):
    paths = export_store(samples, "videopose3d", tmp_path, name="synth", keypoint_set_2d="coco17", noisy=True)
    assert [p.name for p in paths] == ["data_3d_synth.npz", "data_2d_synth_coco17_noisy.npz",
                                       "data_2d_custom_synth_coco17_noisy.npz"]


def test_videopose3d_holds_out_the_last_fifth_of_the_rows_as_test(vp):
    index = item(vp["3d"], "sample_index")
    assert list(index) == ["train", "test"]
    rows = {s: np.sort(np.concatenate(list(actions.values()))) for s, actions in index.items()}
    np.testing.assert_array_equal(rows["train"], np.arange(1200))
    np.testing.assert_array_equal(rows["test"], np.arange(1200, N))


def test_videopose3d_actions_are_the_store_labels(vp, ref, samples):
    labels = open_store(samples).attrs["labels"]
    for _, action, rows in each_action(vp["3d"]):
        assert (ref["label"][rows] == labels.index(action)).all()


def test_videopose3d_3d_is_the_store_world_of_the_3d_set(vp, ref):
    positions = item(vp["3d"], "positions_3d")
    for s, a, rows in each_action(vp["3d"]):
        np.testing.assert_array_equal(positions[s][a], ref["keypoints/h36m17/world"][rows])


def test_videopose3d_2d_is_the_2d_set_of_each_view(vp, ref):
    positions = item(vp["2d"], "positions_2d")
    for s, a, rows in each_action(vp["3d"]):
        assert len(positions[s][a]) == 2
        for v, pixels in enumerate(positions[s][a]):  # (T, 17, 2)
            np.testing.assert_array_equal(pixels, ref["keypoints/coco17/pixels"][rows, v])


def test_videopose3d_2d_metadata_names_both_sets(vp):
    meta = item(vp["2d"], "metadata")
    assert (meta["layout_name"], meta["keypoint_set"], meta["keypoint_set_3d"]) == ("coco", "coco17", "h36m17")
    assert meta["keypoints_symmetry"] == [[1, 3, 5, 7, 9, 11, 13, 15], [2, 4, 6, 8, 10, 12, 14, 16]]
    assert meta["joint_names"][0] == "nose" and str(vp["2d"]["keypoint_set"]) == "coco17"
    assert meta["video_metadata"] == {"train": {"w": 1000, "h": 1000}, "test": {"w": 1000, "h": 1000}}


def test_videopose3d_3d_file_describes_itself_without_pickle(vp_paths):
    with np.load(vp_paths["3d"], allow_pickle=False) as plain:
        assert str(plain["keypoint_set"]) == "h36m17" and plain["joint_names"][10] == "head"
        assert (str(plain["units"]), str(plain["up_axis"])) == ("m", "+y")
        assert "x_cam = R @ x_world + t" in str(plain["frame"])
        assert plain["parents"].tolist() == [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15]
        assert (plain["joints_left"].tolist(), plain["joints_right"].tolist()) == ([4, 5, 6, 11, 12, 13],
                                                                                   [1, 2, 3, 14, 15, 16])
        with pytest.raises(ValueError, match="allow_pickle"):
            plain["positions_3d"]


def test_videopose3d_cameras_take_the_world_into_each_views_camera_frame(vp, ref):
    """What the documented loader does: R @ x_world + t is the store's camera-frame 3D."""
    positions, cameras = item(vp["3d"], "positions_3d"), item(vp["3d"], "cameras")
    for s, a, rows in each_action(vp["3d"]):
        for v, cam in enumerate(cameras[s][a]):
            x_cam = np.einsum("tij,tkj->tki", cam["R"], positions[s][a]) + cam["t"][:, None]
            np.testing.assert_allclose(x_cam, ref["keypoints/h36m17/camera"][rows, v], atol=1e-5)
            np.testing.assert_array_equal(cam["K"], ref["camera/K"][rows, v])


def test_videopose3d_custom_file_has_one_video_per_subject_action_and_view(vp):
    videos, meta = item(vp["custom"], "positions_2d"), item(vp["custom"], "metadata")
    positions = item(vp["2d"], "positions_2d")
    expected = {f"{s}.{a}.view{v}": positions[s][a][v] for s in positions for a in positions[s] for v in range(2)}
    assert sorted(videos) == sorted(expected) == sorted(meta["video_metadata"])
    for video, pixels in expected.items():
        assert list(videos[video]) == ["custom"] and len(videos[video]["custom"]) == 1
        np.testing.assert_array_equal(videos[video]["custom"][0], pixels)
        assert meta["video_metadata"][video] == {"w": 1000, "h": 1000}


def test_videopose3d_noisy_2d_is_the_stores_noisy_2d(samples, ref, tmp_path):
    _, path_2d, _ = export_store(samples, "videopose3d", tmp_path, noisy=True)
    data = np.load(path_2d, allow_pickle=True)
    assert item(data, "metadata")["noisy"] is True
    index = item(np.load(tmp_path / f"data_3d_{samples.stem}.npz", allow_pickle=True), "sample_index")
    for s, actions in item(data, "positions_2d").items():
        for a, views in actions.items():
            np.testing.assert_array_equal(views[1], ref["keypoints/h36m17/pixels_noisy"][index[s][a], 1])


# ---------------------------------------------------------------------------- h36m: layout
def test_h36m_writes_human36m_file_names(samples, tmp_path):
    paths = export_store(samples, "h36m", tmp_path, name="synth", keypoint_set_2d="coco17")
    assert [p.name for p in paths] == ["data_3d_h36m.npz", "data_2d_h36m_synth_coco17.npz"]


def test_h36m_subjects_are_the_human36m_train_and_test_subjects(h36m):
    index = item(h36m["3d"], "sample_index")
    assert list(index) == H36M_SUBJECTS
    first = {s: min(r.min() for r in actions.values()) for s, actions in index.items()}
    last = {s: max(r.max() for r in actions.values()) for s, actions in index.items()}
    assert last["S8"] == 1199 and first["S9"] == 1200 and last["S11"] == N - 1
    assert sum(len(r) for actions in index.values() for r in actions.values()) == N


def test_h36m_3d_has_32_joints_with_h36m17_at_human36m_indices(h36m, ref):
    positions = item(h36m["3d"], "positions_3d")
    names = KEYPOINT_SETS["h36m17"].joint_names
    for s, a, rows in each_action(h36m["3d"]):
        assert positions[s][a].shape == (len(rows), 32, 3) and positions[s][a].dtype == np.float32
        expected = to_h36m_world(ref["keypoints/h36m17/world"][rows], rows).astype(np.float32)
        for name, index in H36M_INDEX.items():
            np.testing.assert_array_equal(positions[s][a][:, index], expected[:, names.index(name)], err_msg=name)


@pytest.mark.parametrize(("removed", "kept"), [(4, 3), (5, 3), (9, 8), (10, 8), (11, 0), (16, 12), (20, 19),
                                               (23, 19), (24, 12), (28, 27), (31, 27)])
def test_h36m_removed_joints_copy_their_nearest_kept_ancestor(h36m, removed, kept):
    for actions in item(h36m["3d"], "positions_3d").values():
        for x in actions.values():
            np.testing.assert_array_equal(x[:, removed], x[:, kept])


def test_h36m_world_is_z_up_with_the_stores_heights(h36m, ref):
    positions = item(h36m["3d"], "positions_3d")
    for s, a, rows in each_action(h36m["3d"]):
        world = ref["keypoints/h36m17/world"][rows]
        head = positions[s][a][:, 15]
        np.testing.assert_allclose(head[:, 2], world[:, 10, 1], atol=1e-6)  # its height, and distance from the axis
        np.testing.assert_allclose(np.linalg.norm(head[:, :2], axis=-1), np.linalg.norm(world[:, 10, ::2], axis=-1),
                                   atol=1e-6)


def test_h36m_a_standing_pose_has_its_head_up_and_faces_minus_y():
    """Row 0 is not turned: +y up becomes +z up, facing +z becomes facing -y, left stays +x."""
    # pelvis, left hip, head, nose
    pose = np.array([[[0.0, 0.9, 0.0], [0.1, 0.9, 0.0], [0.0, 1.7, 0.0], [0.0, 1.6, 0.1]]])
    x = to_h36m_world(pose, np.array([0]))[0]
    np.testing.assert_allclose(x, [[0, 0, 0.9], [0.1, 0, 0.9], [0, 0, 1.7], [0, -0.1, 1.6]], atol=1e-12)


def test_h36m_turns_each_sample_about_the_vertical_by_the_golden_ratio_sequence():
    pose = np.array([[1.0, 0.5, 0.0]])  # on +x, 0.5 m up
    rows = np.arange(1, 6)
    x = to_h36m_world(np.repeat(pose[None], 5, axis=0), rows)[:, 0]
    turn = 2 * np.pi * ((rows * (np.sqrt(5) - 1) / 2) % 1.0)  # about +y in the store's world
    np.testing.assert_allclose(x, np.stack([np.cos(turn), np.sin(turn), np.full(5, 0.5)], axis=1), atol=1e-12)


def test_h36m_metadata_is_what_videopose3d_computes_for_its_17_joints(h36m):
    meta = item(h36m["2d"], "metadata")
    assert meta["num_joints"] == 17
    assert meta["keypoints_symmetry"] == [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]


# ---------------------------------------------------------------------------- h36m: cameras
def calibration() -> dict:
    return tomllib.loads(resources.files("posesynth.export").joinpath("h36m_cameras.toml").read_text())


def test_h36m_calibration_is_videopose3ds():
    """Spot values of VideoPose3D's common/h36m_dataset.py."""
    cal = calibration()
    assert [c["id"] for c in cal["cameras"]] == ["54138969", "55011271", "58860488", "60457274"]
    assert cal["cameras"][0]["focal_length_px"] == [1145.0494384765625, 1143.7811279296875]
    assert cal["cameras"][3]["size_px"] == [1000, 1002]
    assert cal["cameras"][2]["radial_distortion"][2] == -0.0024604974314570427
    assert cal["subjects"]["S1"]["orientation"][0] == [0.1407056450843811, -0.1500701755285263,
                                                       -0.755240797996521, 0.6223280429840088]
    assert cal["subjects"]["S11"]["translation_mm"][3] == [-1590.738037109375, -3854.1689453125, 1578.017578125]
    assert sorted(cal["subjects"]) == sorted(H36M_SUBJECTS)


def videopose3d_pixels(world: np.ndarray, subject: str, view: int) -> np.ndarray:
    """(T, J, 3) world metres -> (T, J, 2) pixels, as VideoPose3D's prepare_data_h36m.py: its
    world_to_camera (quaternions), project_to_2d on normalised intrinsics, image_coordinates."""
    cal = calibration()
    intr, extr = cal["cameras"][view], cal["subjects"][subject]
    w, h = intr["size_px"]
    q = torch.tensor(extr["orientation"][view], dtype=torch.float32)
    t = torch.tensor(extr["translation_mm"][view], dtype=torch.float32) / 1000
    X = torch.from_numpy(world.astype(np.float32)) - t
    q_inv = torch.cat([q[:1], -q[1:]]).expand(*X.shape[:-1], 4)  # qinverse, then qrot
    uv = torch.cross(q_inv[..., 1:], X, dim=-1)
    X = X + 2 * (q_inv[..., :1] * uv + torch.cross(q_inv[..., 1:], uv, dim=-1))
    f = torch.tensor(intr["focal_length_px"]) / w * 2
    c = torch.tensor(intr["center_px"]) / w * 2 - torch.tensor([1, h / w])
    k, p = torch.tensor(intr["radial_distortion"]), torch.tensor(intr["tangential_distortion"])
    XX = torch.clamp(X[..., :2] / X[..., 2:], min=-1, max=1)
    r2 = torch.sum(XX**2, dim=-1, keepdim=True)
    radial = 1 + torch.sum(k * torch.cat((r2, r2**2, r2**3), dim=-1), dim=-1, keepdim=True)
    tan = torch.sum(p * XX, dim=-1, keepdim=True)
    normalised = f * (XX * (radial + tan) + p * r2) + c
    return ((normalised + torch.tensor([1, h / w])) * w / 2).numpy()


def test_h36m_2d_is_the_projection_of_the_3d_through_each_subjects_four_cameras(h36m):
    positions, views = item(h36m["3d"], "positions_3d"), item(h36m["2d"], "positions_2d")
    kept = list(H36M_INDEX.values())
    for s, a, rows in each_action(h36m["3d"]):
        assert len(views[s][a]) == 4
        for v, pixels in enumerate(views[s][a]):  # (T, 17, 2)
            assert pixels.dtype == np.float32
            np.testing.assert_allclose(pixels, videopose3d_pixels(positions[s][a][:, kept], s, v), atol=2e-3)


def test_h36m_coco17_2d_is_the_coco17_world_through_the_same_cameras(samples, ref, tmp_path):
    _, path_2d = export_store(samples, "h36m", tmp_path, keypoint_set_2d="coco17")
    data = np.load(path_2d, allow_pickle=True)
    meta = item(data, "metadata")
    assert (meta["layout_name"], meta["keypoint_set_3d"]) == ("coco", "h36m17")
    index = item(np.load(tmp_path / "data_3d_h36m.npz", allow_pickle=True), "sample_index")
    rows = index["S9"][next(iter(index["S9"]))]
    pixels = item(data, "positions_2d")["S9"][next(iter(index["S9"]))][2]
    world = to_h36m_world(ref["keypoints/coco17/world"][rows], rows)
    np.testing.assert_allclose(pixels, videopose3d_pixels(world, "S9", 2), atol=2e-3)


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize("fmt", ["videopose3d", "h36m"])
def test_a_training_store_is_refused(fmt, tmp_path, tmp_path_factory):
    with pytest.raises(ExportError, match=f"--format {fmt} needs a sample store"):
        export_store(training_store(tmp_path_factory), fmt, tmp_path / "x")


@pytest.mark.parametrize(("fmt", "option", "kwargs"), [
    ("videopose3d", "--keypoint-set", {"keypoint_set": "mpii"}),
    ("videopose3d", "--keypoint-set-2d", {"keypoint_set_2d": "mpii"}),
    ("h36m", "--keypoint-set-2d", {"keypoint_set_2d": "mpii"}),
])
def test_a_missing_keypoint_set_is_named_with_its_option(samples, tmp_path, fmt, option, kwargs):
    with pytest.raises(ExportError, match=f"{option}: the store has no mpii keypoints"):
        export_store(samples, fmt, tmp_path / "x", **kwargs)


@pytest.mark.parametrize("fmt", ["videopose3d", "h36m"])
def test_a_file_as_the_output_folder_is_refused(samples, tmp_path, fmt):
    (tmp_path / "f").write_text("")
    with pytest.raises(ExportError, match="--out .* is a file; --format .* writes its files into a folder"):
        export_store(samples, fmt, tmp_path / "f")


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_a_test_fraction_outside_zero_one_is_refused(samples, tmp_path, fraction):
    with pytest.raises(ExportError, match="--test-fraction must be between 0 and 1"):
        export_store(samples, "videopose3d", tmp_path, test_fraction=fraction)


def test_h36m_needs_a_sample_for_each_test_subject(samples, tmp_path):
    with pytest.raises(ExportError, match="1 for 2 test subjects; each needs one"):
        export_store(samples, "h36m", tmp_path, test_fraction=0.0005)


def test_h36m_needs_h36m17_for_its_3d(samples, tmp_path):
    with pytest.raises(ExportError, match="--keypoint-set coco17: --format h36m builds Human3.6M's skeleton"):
        export_store(samples, "h36m", tmp_path, keypoint_set="coco17")


def test_h36m_refuses_the_noisy_2d_of_posesynths_cameras(samples, tmp_path):
    with pytest.raises(ExportError, match="--noisy: --format h36m re-projects"):
        export_store(samples, "h36m", tmp_path, noisy=True)


def test_a_name_that_is_not_a_file_name_part_is_refused(samples, tmp_path):
    with pytest.raises(ExportError, match="--name 'a/b'"):
        export_store(samples, "videopose3d", tmp_path, name="a/b")


def test_h36m_refuses_existing_files_before_writing_either(samples, tmp_path):
    (tmp_path / "data_2d_h36m_synth_h36m17.npz").write_bytes(b"precious")
    with pytest.raises(OutputError, match="already exists; pass --overwrite"):
        export_store(samples, "h36m", tmp_path, name="synth")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data_2d_h36m_synth_h36m17.npz"]


def test_cli_exports_h36m_with_coco17_2d(samples, tmp_path):
    result = CliRunner().invoke(main, ["export", str(samples), "--format", "h36m", "--keypoint-set-2d", "coco17",
                                       "--test-fraction", "0.3", "--name", "gt", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    index = item(np.load(tmp_path / "data_3d_h36m.npz", allow_pickle=True), "sample_index")
    assert min(r.min() for r in index["S9"].values()) == N - 450
    assert (tmp_path / "data_2d_h36m_gt_coco17.npz").is_file()


def test_cli_names_a_bad_option_in_one_line(samples, tmp_path):
    result = CliRunner().invoke(main, ["export", str(samples), "--format", "h36m", "--keypoint-set", "coco17",
                                       "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert result.output.startswith("error: --keypoint-set coco17") and "Traceback" not in result.output
