"""posesynth info: what a sample or training store holds, incomplete ones included."""

import json
import shutil

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from posesynth.cli import main
from posesynth.info import info_text, store_info
from test_errors import error_line
from test_sampling import sample_store, training_store


def test_sample_store_info(tmp_path_factory):
    path = sample_store(tmp_path_factory)
    info = store_info(path)
    assert info["kind"] == "samples" and info["complete"] and info["rows"] == 1500
    assert info["keypoint_sets"] == {"smpl24": 24, "h36m17": 17, "coco17": 17}
    assert info["views"] == 2 and info["seed"] == 3 and info["noisy_2d"]
    assert info["arrays"]["keypoints/h36m17/pixels"] == {"shape": [1500, 2, 17, 2], "dtype": "float32",
                                                         "chunks": [256, 2, 17, 2], "shards": [512, 2, 17, 2]}
    stats = info["statistics"]
    assert 3.0 < stats["camera_distance_m"]["mean"] < 7.0
    assert 1143 <= stats["focal_px"]["min"] <= stats["focal_px"]["max"] <= 1150
    assert 0.5 < stats["visible_fraction/h36m17"]["mean"] <= 1
    assert info["disk_bytes"] > 100_000
    text = info_text(path)
    for words in ("samples store, complete", "rows 1,500", "seed 3", "views 2", "h36m17 (17)", "preset h36m",
                  "camera_distance_m", "size on disk", "keypoints/coco17/visible"):
        assert words in text, words


def test_incomplete_store_is_reported_not_refused(tmp_path, tmp_path_factory):
    copy = tmp_path / "copy.zarr"
    shutil.copytree(sample_store(tmp_path_factory), copy)
    group = zarr.open_group(str(copy), mode="r+")
    group.attrs["posesynth"] = {**group.attrs["posesynth"], "complete": False}
    group.attrs["shards_done"] = [1]
    info = store_info(copy)
    assert not info["complete"] and info["shards_done"] == "1 of 3"
    assert "INCOMPLETE" in info_text(copy)


def test_training_store_info_and_cli_json(tmp_path_factory):
    path = training_store(tmp_path_factory)
    result = CliRunner().invoke(main, ["info", str(path), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["kind"] == "training" and info["rows"] == sum(info["splits"].values())
    assert info["frames_per_source"]["hdm05"] > 0 and info["labels"]["content"] == 3
    text = CliRunner().invoke(main, ["info", str(path)]).output
    assert "training store, complete" in text and "frames per source" in text


def _copy_store(tmp_path, tmp_path_factory):
    """A writable copy of the shared training store."""
    copy = tmp_path / "copy.zarr"
    shutil.copytree(training_store(tmp_path_factory), copy)
    return copy, zarr.open_group(str(copy), mode="r+")


def test_json_holds_the_run_record(tmp_path_factory):
    run = store_info(training_store(tmp_path_factory))["run"]
    assert run["device"] == "cpu" and run["command"] is None
    assert set(run["packages"]) >= {"torch", "numpy", "zarr"} and run["created"].endswith("+00:00")


def test_text_shows_the_run_record(tmp_path_factory):
    path = training_store(tmp_path_factory)
    run = store_info(path)["run"]
    text = info_text(path)
    assert f"  run {run['created']} on cpu ({run['platform']})" in text
    assert f"    Python {run['python']}, torch {run['packages']['torch']}, numpy" in text
    assert "    command none (a program called the library)" in text


def test_text_shows_the_command_line_quoted(tmp_path, tmp_path_factory):
    copy, group = _copy_store(tmp_path, tmp_path_factory)
    group.attrs["run"] = {**group.attrs["run"], "command": ["posesynth", "prepare", "my clips", "out.zarr"]}
    assert "    command posesynth prepare 'my clips' out.zarr" in info_text(copy)


def test_json_holds_the_shape_space(tmp_path_factory):
    space = store_info(training_store(tmp_path_factory))["shape_space"]
    assert space["kind"] == "posesynth" and space["num_betas"] == 10 and not space["smpl"]


def test_text_shows_the_shape_space(tmp_path_factory):
    text = info_text(training_store(tmp_path_factory))
    assert "  shape space posesynth, 10 betas: posesynth's own semantic shape space" in text


def test_store_predating_run_and_shape_space(tmp_path, tmp_path_factory):
    copy, group = _copy_store(tmp_path, tmp_path_factory)
    del group.attrs["run"], group.attrs["shape_space"]
    info = store_info(copy)
    assert info["run"] is None and info["shape_space"] is None
    text = info_text(copy)
    assert "  run " not in text and "shape space" not in text and "training store, complete" in text


# ---------------------------------------------------------------------------- damaged stores
def damaged_sample_store(tmp_path, tmp_path_factory, damage: str, value=None):
    """A copy of the shared sample store with one part damaged: ``"attribute"`` (attribute ``value[0]``
    set to ``value[1]``), ``"metadata"`` (garbage bytes as smpl/betas' zarr.json) or ``"chunk"``
    (random bytes over a shard of keypoints/smpl24/camera, its length kept)."""
    copy = tmp_path / "damaged.zarr"
    shutil.copytree(sample_store(tmp_path_factory), copy)
    if damage == "attribute":
        zarr.open_group(str(copy), mode="r+").attrs[value[0]] = value[1]
    elif damage == "metadata":
        (copy / "smpl" / "betas" / "zarr.json").write_bytes(b"\x80\x81\xfe not json")
    else:
        shard = next(p for p in sorted((copy / "keypoints" / "smpl24" / "camera" / "c").rglob("*")) if p.is_file())
        shard.write_bytes(np.random.default_rng(0).bytes(shard.stat().st_size))
    return copy


WRONG_ATTRIBUTES = [
    (("labels", 5), "attribute 'labels' is 5, not a list"),
    (("keypoint_sets", {"h36m17": 5}), "attribute 'keypoint_sets': its entry 'h36m17' is 5, not a dict"),
]


@pytest.mark.parametrize(("attribute", "message"), WRONG_ATTRIBUTES)
def test_an_attribute_of_the_wrong_type_is_a_damaged_store_naming_it(tmp_path, tmp_path_factory, attribute, message):
    store = damaged_sample_store(tmp_path, tmp_path_factory, "attribute", attribute)
    assert f"error: {store}: damaged store: {message}" in error_line(["info", store])


def test_unreadable_array_metadata_is_a_damaged_store_naming_the_array(tmp_path, tmp_path_factory):
    store = damaged_sample_store(tmp_path, tmp_path_factory, "metadata")
    assert f"error: {store}: damaged store: the metadata of smpl/betas cannot be read" in error_line(["info", store])


def test_a_corrupt_chunk_is_a_damaged_store_naming_the_array(tmp_path, tmp_path_factory):
    store = damaged_sample_store(tmp_path, tmp_path_factory, "chunk")
    assert f"error: {store}: damaged store: array keypoints/smpl24/camera: a chunk cannot be read" in \
        error_line(["info", store])
