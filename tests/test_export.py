"""posesynth export: npz and h5 read back equal to the store; VideoPose3D's layout."""

import json

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from posesynth.cli import main
from posesynth.export import ExportError, export_store
from posesynth.store import open_store
from test_sampling import read_all, sample_store, training_store


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return sample_store(tmp_path_factory)


def test_npz_holds_every_array_and_the_attributes_without_pickle(tmp_path, samples):
    (path,) = export_store(samples, "npz", tmp_path / "out.npz")
    ref = read_all(samples)
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == sorted([*ref, "attrs"])
        for name, values in ref.items():
            assert data[name].dtype == values.dtype and np.array_equal(data[name], values), name
        attrs = json.loads(str(data["attrs"]))
    assert attrs == json.loads(json.dumps(dict(open_store(samples).attrs)))


def test_h5_holds_every_array_and_the_attributes(tmp_path, samples):
    (path,) = export_store(samples, "h5", tmp_path / "out.h5")
    ref = read_all(samples)
    with h5py.File(path, "r") as f:
        for name, values in ref.items():
            assert np.array_equal(f[name][...], values), name
            assert f[name].chunks[0] == 256
        assert json.loads(f.attrs["seed"]) == 3
        assert json.loads(f.attrs["keypoint_sets"])["coco17"]["joint_names"][0] == "nose"


def test_videopose3d_layout(tmp_path, samples):
    paths = export_store(samples, "videopose3d", tmp_path / "vp", name="synth")
    assert [p.name for p in paths] == ["data_3d_synth.npz", "data_2d_synth_gt.npz"]
    ref = read_all(samples)
    labels = open_store(samples).attrs["labels"]
    with pytest.raises(ValueError, match="allow_pickle"):  # pickled dicts, as VideoPose3D's own files
        np.load(paths[0])["positions_3d"]
    d3 = np.load(paths[0], allow_pickle=True)
    d2 = np.load(paths[1], allow_pickle=True)
    positions_3d = d3["positions_3d"].item()
    positions_2d = d2["positions_2d"].item()
    index = d3["sample_index"].item()["synthetic"]
    assert list(positions_3d) == ["synthetic"] and set(positions_3d["synthetic"]) <= set(labels)
    assert sum(len(rows) for rows in index.values()) == len(ref["label"])
    for action, rows in index.items():
        assert (ref["label"][rows] == labels.index(action)).all()
        np.testing.assert_array_equal(positions_3d["synthetic"][action], ref["keypoints/h36m17/world"][rows])
        views = positions_2d["synthetic"][action]
        assert len(views) == 2
        for v, pixels in enumerate(views):
            np.testing.assert_array_equal(pixels, ref["keypoints/h36m17/pixels"][rows, v])
        cams = d3["cameras"].item()["synthetic"][action]
        np.testing.assert_array_equal(cams[1]["K"], ref["camera/K"][rows, 1])
    meta = d2["metadata"].item()
    assert meta["layout_name"] == "h36m" and meta["num_joints"] == 17
    assert meta["keypoints_symmetry"] == [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]


def test_videopose3d_noisy_and_errors(tmp_path, tmp_path_factory, samples):
    _, noisy = export_store(samples, "videopose3d", tmp_path / "vp", keypoint_set="coco17", noisy=True)
    assert noisy.name.endswith("_noisy.npz")
    ref = read_all(samples)
    pos = np.load(noisy, allow_pickle=True)["positions_2d"].item()["synthetic"]
    assert sum(len(v[0]) for v in pos.values()) == len(ref["label"])
    with pytest.raises(ExportError, match="needs a sample store"):
        export_store(training_store(tmp_path_factory), "videopose3d", tmp_path / "x")
    with pytest.raises(ExportError, match="no keypoint set"):
        export_store(samples, "videopose3d", tmp_path / "x", keypoint_set="mpii")
    with pytest.raises(ExportError, match="unknown export format"):
        export_store(samples, "csv", tmp_path / "x.csv")


def test_cli_export_training_store_as_npz(tmp_path, tmp_path_factory):
    train = training_store(tmp_path_factory)
    result = CliRunner().invoke(main, ["export", str(train), "--format", "npz", "--out", str(tmp_path / "t.npz")])
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "t.npz") as data:
        np.testing.assert_array_equal(data["joints"], read_all(train)["joints"])
