"""Target 2D files, the Fréchet distance on normalised 2D, and ``info --target-2d``."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from posesynth.adapt.distance import store_coords, store_distance
from posesynth.adapt.errors import AdaptError
from posesynth.adapt.frechet import frechet_2d
from posesynth.adapt.target import read_target
from posesynth.cli import main
from posesynth.keypoint_sets import KEYPOINT_SETS
from test_sampling import sample_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return sample_store(tmp_path_factory)


@pytest.fixture(scope="module")
def coords(store):
    return store_coords(store, "h36m17")


def write(path, keypoints, **arrays):
    np.savez(path, keypoints=keypoints, **arrays)
    return path


def pixels_file(path, coords, layout="h36m17", f=1000.0, c=500.0, **extra):
    """``coords`` (N, J, 2) as pixels of a camera with focal ``f`` and centre ``c``."""
    K = np.array([[f, 0, c], [0, f, c], [0, 0, 1.0]])
    return write(path, coords * f + c, K=K, layout=layout, **extra)


def rotated(coords, deg):
    a = np.deg2rad(deg)
    R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return coords @ R.T


def test_a_store_is_at_distance_zero_from_its_own_2d(store, coords, tmp_path):
    result = store_distance(store, pixels_file(tmp_path / "t.npz", coords))
    assert result["target_poses"] == result["store_poses"] == len(coords)
    assert result["frechet_2d"] < 1e-6


def test_the_distance_grows_with_the_roll_of_the_target(coords):
    d = [frechet_2d(coords, rotated(coords, deg), "h36m17") for deg in (0, 10, 20, 40)]
    assert d[0] < 1e-6 and d[1] > 1e-3 and d[1] < d[2] < d[3]


def test_the_distance_ignores_image_position_and_size(coords):
    assert frechet_2d(coords, 2.5 * coords + 0.3, "h36m17") < 1e-6


def test_a_folder_of_files_is_read_in_order_with_hashes_and_counts(coords, tmp_path):
    pixels_file(tmp_path / "a.npz", coords[:300])
    pixels_file(tmp_path / "b.npz", coords[300:600])
    target = read_target(tmp_path)
    assert len(target) == 600 and target.layout == "h36m17"
    assert [f["frames"] for f in target.files] == [300, 300] and len(target.files[0]["sha256"]) == 64
    np.testing.assert_allclose(target.coords, coords[:600], atol=1e-9)


def test_frames_with_a_missing_keypoint_are_left_out(coords, tmp_path):
    confidence = np.ones(coords.shape[:2] + (1,))
    confidence[:10, 3] = 0.0
    K = np.array([[1000.0, 0, 500], [0, 1000, 500], [0, 0, 1]])
    keypoints = np.concatenate([coords * 1000 + 500, confidence], -1)
    target = read_target(write(tmp_path / "t.npz", keypoints, K=K, layout="h36m17"))
    assert len(target) == len(coords) - 10 and target.files[0]["frames_used"] == len(coords) - 10


def test_coco_keypoints_named_in_another_order_are_reordered(coords, tmp_path):
    names = list(KEYPOINT_SETS["coco17"].joint_names)[::-1]
    target = read_target(write(tmp_path / "t.npz", coords[:, ::-1], joint_names=np.array(names)), normalised=True)
    assert target.layout == "coco17"
    np.testing.assert_allclose(target.coords, coords)


@pytest.mark.parametrize("arrays, normalised, message", [
    ({"layout": "smpl24"}, True, "layout smpl24 cannot be a target"),
    ({}, True, "say which keypoints these are"),
    ({"layout": "h36m17"}, False, "no intrinsics 'K'"),
    ({"layout": "h36m"}, True, "unknown layout 'h36m'"),
])
def test_bad_target_files_are_named_with_what_is_wrong(coords, tmp_path, arrays, normalised, message):
    path = write(tmp_path / "t.npz", coords, **arrays)
    with pytest.raises(AdaptError, match=f"t.npz: .*{message}"):
        read_target(path, normalised)


def test_a_target_with_nans_is_refused(coords, tmp_path):
    bad = coords.copy()
    bad[5, 2] = np.nan
    with pytest.raises(AdaptError, match="t.npz: keypoints hold NaN"):
        read_target(write(tmp_path / "t.npz", bad, layout="h36m17"), normalised=True)


def test_a_target_with_too_few_poses_is_refused(coords, tmp_path):
    with pytest.raises(AdaptError, match="100 frames with every keypoint visible; a target needs at least 256"):
        read_target(write(tmp_path / "t.npz", coords[:100], layout="h36m17"), normalised=True)


def test_a_folder_of_two_layouts_is_refused(coords, tmp_path):
    write(tmp_path / "a.npz", coords, layout="h36m17")
    write(tmp_path / "b.npz", coords, layout="coco17")
    with pytest.raises(AdaptError, match="b.npz: layout coco17, but .*a.npz is h36m17"):
        read_target(tmp_path, normalised=True)


def test_info_reports_the_distance_to_a_target(store, coords, tmp_path):
    target = pixels_file(tmp_path / "t.npz", rotated(coords, 20))
    r = CliRunner().invoke(main, ["info", str(store), "--target-2d", str(target), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["target_2d"]["frechet_2d"] > 1e-3
    r = CliRunner().invoke(main, ["info", str(store), "--target-2d", str(target)])
    assert r.exit_code == 0 and "target 2D: Fréchet distance" in r.output
