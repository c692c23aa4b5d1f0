"""One source of truth for the store layouts: posesynth.stores, the stores written, and the docs."""

import re
from pathlib import Path

import pytest
import zarr

from posesynth.stores import samples, training
from posesynth.stores.arrays import ArraySpec
from test_sampling import sample_store, training_store

DOC = Path(__file__).resolve().parents[1] / "docs" / "sample_store.md"


def documented_arrays() -> dict[str, tuple[str, str]]:
    """The array table of docs/sample_store.md: path -> (shape and dtype, dimension names)."""
    rows = re.findall(r"^\| `([^`]+)` \| ([^|]+) \| [^|]+ \| ([^|]+) \|$", DOC.read_text(), flags=re.M)
    return {path: (shape.strip(), dims.strip()) for path, shape, dims in rows}


def arrays_of(path) -> dict[str, zarr.Array]:
    group = zarr.open_group(str(path), mode="r")
    return {name: a for name, a in group.members(max_depth=None) if isinstance(a, zarr.Array)}


def test_the_doc_table_is_the_layout_module():
    documented = documented_arrays()
    assert set(documented) == {spec.path for spec in samples.ARRAYS}
    for spec in samples.ARRAYS:
        assert documented[spec.path] == (spec.shown(), ", ".join(spec.dims)), spec.path


def test_a_written_sample_store_holds_exactly_the_layout(tmp_path_factory):
    arrays = arrays_of(sample_store(tmp_path_factory))
    group = zarr.open_group(str(sample_store(tmp_path_factory)), mode="r")
    sets = {name: len(s["joint_names"]) for name, s in group.attrs["keypoint_sets"].items()}
    V, K = samples.num_views(group), group[samples.smpl_path("betas")].shape[1]
    expected = samples.array_shapes(V, K, sets, noise=True)
    assert set(arrays) == set(expected)
    for path, (tail, dtype) in expected.items():
        assert (arrays[path].shape[1:], str(arrays[path].dtype)) == (tail, dtype), path
        assert arrays[path].metadata.dimension_names == samples.dimension_names(path), path


def test_a_written_training_store_holds_exactly_the_layout(tmp_path_factory):
    arrays = arrays_of(training_store(tmp_path_factory))
    assert set(arrays) == {spec.path for spec in training.ARRAYS}
    K = arrays[training.smpl_path("betas")].shape[1]
    for spec in training.ARRAYS:
        a = arrays[spec.path]
        assert (a.shape[1:], str(a.dtype)) == (spec.tail({"K": K}), spec.dtype), spec.path
        assert a.metadata.dimension_names == training.dimension_names(spec.path), spec.path


def test_a_keypoint_path_finds_its_template():
    assert samples.keypoints_path("coco17", "pixels") == "keypoints/coco17/pixels"
    assert samples.array_spec("keypoints/coco17/pixels").path == "keypoints/<set>/pixels"
    assert samples.dimension_names("camera/K") == ("sample", "view", "matrix_row", "matrix_col")
    assert samples.keypoint_set_names(["camera/K", "keypoints/h36m17/world", "keypoints/coco17/visible"]) == [
        "coco17", "h36m17"]


@pytest.mark.parametrize("path", [lambda: samples.smpl_path("pose"), lambda: samples.camera_path("k"),
                                  lambda: samples.keypoints_path("smpl24", "pixel"),
                                  lambda: training.label_path("action"), lambda: training.smpl_path("betas2")])
def test_a_path_the_layout_does_not_have_is_refused(path):
    with pytest.raises(KeyError, match="they are"):
        path()


def test_an_array_spec_names_every_axis():
    with pytest.raises(ValueError, match="sample axis"):
        ArraySpec("x", ("V", 3), "float32", ("sample", "view"))
    assert ArraySpec("x", (), "int32", ("sample",)).shown() == "(N,) int32"
