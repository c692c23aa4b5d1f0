"""Every store array names its dimensions, so xarray opens sample and training stores."""

import numpy as np
import pytest
import zarr

from posesynth.sample_recipe import resolve_sample_recipe
from posesynth.sampling import sample_to_store
from posesynth.store import dimension_names
from test_sampling import SMALL, read_all, sample_store, training_store

xr = pytest.importorskip("xarray")

SAMPLE_DIMS = {
    "label": ("sample",),
    "smpl/global_orient": ("sample", "axis_angle"), "smpl/body_pose": ("sample", "pose_param"),
    "smpl/betas": ("sample", "beta"), "smpl/transl": ("sample", "xyz"),
    "camera/K": ("sample", "view", "matrix_row", "matrix_col"),
    "camera/R": ("sample", "view", "matrix_row", "matrix_col"),
    "camera/t": ("sample", "view", "xyz"), "camera/distortion": ("sample", "view", "coefficient"),
    "camera/image_size": ("sample", "view", "width_height"),
    "keypoints/h36m17/world": ("sample", "joint", "xyz"), "keypoints/h36m17/camera": ("sample", "view", "joint", "xyz"),
    "keypoints/h36m17/pixels": ("sample", "view", "joint", "uv"),
    "keypoints/h36m17/pixels_noisy": ("sample", "view", "joint", "uv"),
    "keypoints/h36m17/visible": ("sample", "view", "joint"),
}


def arrays_of(path):
    group = zarr.open_group(str(path), mode="r")
    return {name: a for name, a in group.members(max_depth=None) if isinstance(a, zarr.Array)}


def open_tree(path):
    return xr.open_datatree(str(path), engine="zarr", consolidated=False)


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return sample_store(tmp_path_factory)


@pytest.fixture(scope="module")
def train(tmp_path_factory):
    return training_store(tmp_path_factory)


@pytest.fixture(scope="module")
def v2_samples(tmp_path_factory, train):
    recipe = resolve_sample_recipe(overrides=SMALL + ['sample.keypoint_sets=["smpl24"]'])
    out = tmp_path_factory.mktemp("v2") / "s.zarr"
    return sample_to_store(train, out, 300, seed=1, recipe=recipe, device="cpu", zarr_format=2).out


# ---------------------------------------------------------------------------- dimension names
def test_every_sample_store_array_names_its_dimensions(samples):
    arrays = arrays_of(samples)
    for name, dims in SAMPLE_DIMS.items():
        assert arrays[name].metadata.dimension_names == dims, name
    assert all(a.metadata.dimension_names[0] == "sample" and len(a.metadata.dimension_names) == a.ndim
               for a in arrays.values())


def test_every_training_store_array_names_its_dimensions(train):
    arrays = arrays_of(train)
    assert arrays["joints"].metadata.dimension_names == ("sample", "joint", "xyz")
    assert arrays["betas"].metadata.dimension_names == ("sample", "beta")
    assert all(arrays[n].metadata.dimension_names == ("sample",) for n in ("frame", "split", "content", "file"))
    assert all(a.metadata.dimension_names is not None for a in arrays.values())


def test_an_array_outside_the_store_layouts_still_gets_a_name_per_axis():
    assert dimension_names("extra/scores", 3) == ("sample", "scores_1", "scores_2")
    assert dimension_names("keypoints/x/world", 2) == ("sample", "world_1")  # the layouts name their own


def test_xarray_opens_a_sample_store_group_by_group(samples):
    tree = open_tree(samples)
    ref = read_all(samples)
    h36m = tree["keypoints/h36m17"].to_dataset()
    assert dict(h36m.sizes) == {"sample": 1500, "view": 2, "joint": 17, "uv": 2, "xyz": 3}
    np.testing.assert_array_equal(h36m["pixels"].values, ref["keypoints/h36m17/pixels"])
    np.testing.assert_array_equal(h36m["visible"].values, ref["keypoints/h36m17/visible"])
    assert tree["camera"]["K"].dims == ("sample", "view", "matrix_row", "matrix_col")
    np.testing.assert_array_equal(tree["label"].values, ref["label"])


def test_xarray_opens_a_training_store(train):
    ds = xr.open_zarr(str(train), consolidated=False)
    ref = read_all(train)
    assert ds["joints"].dims == ("sample", "joint", "xyz")
    np.testing.assert_array_equal(ds["joints"].values, ref["joints"])
    np.testing.assert_array_equal(ds["split"].values, ref["split"])


def test_xarray_reads_a_zarr_v2_store_without_turning_zeros_into_nan(v2_samples):
    cameras = xr.open_zarr(str(v2_samples), group="camera", consolidated=False)
    ref = read_all(v2_samples)["camera/K"]
    assert cameras["K"].dims == ("sample", "view", "matrix_row", "matrix_col") and cameras["K"].dtype == np.float32
    assert (ref[:, :, 0, 1] == 0).all()  # no skew: zeros a fill-value mask would make NaN
    np.testing.assert_array_equal(cameras["K"].values, ref)
