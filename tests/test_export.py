"""posesynth export: npz and h5 read back equal to the store (VideoPose3D's formats: test_export_videopose3d.py)."""

import json

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from posesynth.cli import main
from posesynth.export import ExportError, export_store
from posesynth.store import open_store
from test_errors import error_line
from test_info import WRONG_ATTRIBUTES, damaged_sample_store
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


def test_an_unknown_format_is_refused(tmp_path, samples):
    with pytest.raises(ExportError, match="unknown export format"):
        export_store(samples, "csv", tmp_path / "x.csv")


@pytest.mark.parametrize(("attribute", "message"), WRONG_ATTRIBUTES)
def test_an_attribute_of_the_wrong_type_is_a_damaged_store_written_nowhere(tmp_path, tmp_path_factory, attribute,
                                                                            message):
    store = damaged_sample_store(tmp_path, tmp_path_factory, "attribute", attribute)
    out = tmp_path / "out"
    assert f"error: {store}: damaged store: {message}" in \
        error_line(["export", store, "--format", "videopose3d", "--out", out])
    assert not out.exists()


def test_unreadable_array_metadata_is_a_damaged_store_naming_the_array(tmp_path, tmp_path_factory):
    store = damaged_sample_store(tmp_path, tmp_path_factory, "metadata")
    assert f"error: {store}: damaged store: the metadata of smpl/betas cannot be read" in \
        error_line(["export", store, "--format", "npz", "--out", tmp_path / "out.npz"])


def test_a_corrupt_chunk_is_a_damaged_store_naming_the_array_and_leaves_no_file(tmp_path, tmp_path_factory):
    store = damaged_sample_store(tmp_path, tmp_path_factory, "chunk")
    assert f"error: {store}: damaged store: array keypoints/smpl24/camera: a chunk cannot be read" in \
        error_line(["export", store, "--format", "npz", "--out", tmp_path / "out.npz"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged.zarr"]


def test_cli_export_training_store_as_npz(tmp_path, tmp_path_factory):
    train = training_store(tmp_path_factory)
    result = CliRunner().invoke(main, ["export", str(train), "--format", "npz", "--out", str(tmp_path / "t.npz")])
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "t.npz") as data:
        np.testing.assert_array_equal(data["joints"], read_all(train)["joints"])
