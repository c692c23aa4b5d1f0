"""`posesynth prepare` on the committed real clips: the store's contents, split and errors."""

import dataclasses
import re
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import BANDAI_DASH, FIXTURES, KICK_LEFT
from posesynth.cli import main
from posesynth.kinematics import forward_kinematics
from posesynth.labels import labels_for
from posesynth.config import RecipeError
from posesynth.prepare import (
    DEFAULT_SPLIT, PrepareError, PrepareOptions, load_split, prepare, resample_indices, split_files,
)
from posesynth.rotations import axis_angle_to_matrix
from posesynth.store import StoreError, open_store
from posesynth.stores.training import HELD_OUT, file_labels, held_out_categories, split_rows


KICK, DASH = (str(p.relative_to(FIXTURES)) for p in (KICK_LEFT, BANDAI_DASH))  # file labels: paths in the pool
RAISE = "bandai_namco/dataset-2/dataset-2_raise-up-left-hand_active_003.bvh"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    out = tmp_path_factory.mktemp("prep") / "train.zarr"
    summary = prepare([FIXTURES], out, PrepareOptions(workers=1, val_fraction=0.5), progress=False)
    return open_store(out, kind="training"), summary


def test_store_holds_every_clip_resampled_to_30_fps(store):
    group, summary = store
    assert summary.files == 3 and not summary.skipped
    n = summary.frames
    for name, shape in {"global_orient": (3,), "body_pose": (69,), "betas": (10,), "transl": (3,),
                        "joints": (24, 3), "frame": (), "split": ()}.items():
        assert group[name].shape == (n,) + shape, name
        assert group[name].dtype in (np.float32, np.int32, np.uint8)
    # HDM05 is at 120 fps: every 4th frame survives.
    file_codes = group["file"][:]
    kick = group.attrs["labels"]["file"].index(KICK)
    frames = group["frame"][:][file_codes == kick]
    assert (np.diff(frames) == 4).all() and frames[0] == 0


def test_labels_come_from_file_names(store):
    group, _ = store
    labels = group.attrs["labels"]
    assert set(labels["source"]) == {"hdm05", "bandai_namco"}
    assert {"kickLFront1Reps", "dash", "raise-up-left-hand"} <= set(labels["content"])
    assert {"normal", "active", "none"} <= set(labels["style"])
    assert "HDM_bd" in labels["subject"]


def test_file_labels_name_each_files_label(store):
    group, _ = store
    files = group.attrs["labels"]["file"]
    content, source = file_labels(group, "content"), file_labels(group, "source")
    assert len(content) == len(files)
    assert (content[files.index(KICK)], source[files.index(KICK)]) == ("kickLFront1Reps", "hdm05")
    assert (content[files.index(DASH)], source[files.index(DASH)]) == ("dash", "bandai_namco")


def test_held_out_categories_say_why_each_file_is_held_out(tmp_path):
    out = tmp_path / "train.zarr"
    prepare([FIXTURES], out, PrepareOptions(workers=1, val_fraction=0.0, val_subjects=("HDM_bd",),
                                            val_contents=("dash",)), progress=False)
    group = open_store(out, kind="training")
    files, category = group.attrs["labels"]["file"], held_out_categories(group)
    actor, cls, file = HELD_OUT
    assert [category[files.index(f)] for f in (KICK, DASH, RAISE)] == [actor, cls, file]


def test_stored_joints_are_the_fk_of_the_stored_parameters(store, body):
    group, _ = store
    idx = np.arange(0, group["joints"].shape[0], 7)
    pose = np.concatenate([group["global_orient"][:][idx], group["body_pose"][:][idx]], 1).reshape(-1, 24, 3)
    local = axis_angle_to_matrix(torch.as_tensor(pose, dtype=torch.float64))
    rest = body.rest_joints(torch.as_tensor(group["betas"][:][idx])).double()
    _, joints = forward_kinematics(local, rest)
    joints = joints + torch.as_tensor(group["transl"][:][idx], dtype=torch.float64)[:, None]
    np.testing.assert_allclose(joints.numpy(), group["joints"][:][idx], atol=2e-4)


def test_split_holds_out_whole_files(store):
    group, _ = store
    split, files = group["split"][:], group["file"][:]
    for code in np.unique(files):
        assert len(np.unique(split[files == code])) == 1
    held = group.attrs["split_rule"]["held_out_files"]
    assert set(held) == {group.attrs["labels"]["file"][c] for c in np.unique(files[split == 1])}


def test_split_rows_select_a_split_and_refuse_unknown_or_empty_ones(store, tmp_path):
    group, _ = store
    split = group["split"][:]
    np.testing.assert_array_equal(split_rows(group, "val", "s.zarr"), np.flatnonzero(split == 1))
    np.testing.assert_array_equal(split_rows(group, "all", "s.zarr"), np.arange(len(split)))
    with pytest.raises(StoreError, match="s.zarr: split must be 'all' or one of"):
        split_rows(group, "test", "s.zarr")
    out = tmp_path / "no_val.zarr"
    prepare([FIXTURES], out, PrepareOptions(workers=1, val_fraction=0.0), progress=False)
    with pytest.raises(StoreError, match="no_val.zarr: the 'val' split is empty"):
        split_rows(open_store(out), "val", out)


def test_split_by_subject_and_fraction():
    labels = [labels_for(p, FIXTURES) for p in sorted(FIXTURES.rglob("*.amc")) + sorted(FIXTURES.rglob("*.bvh"))]
    assert split_files(labels, PrepareOptions(val_fraction=0.0, val_subjects=("HDM_bd",))) == {
        "hdm05/kickLFront1Reps/HDM_bd_kickLFront1Reps_003_120.amc"}
    assert split_files(labels, PrepareOptions(val_fraction=0.0)) == set()
    # Groups of one file round 0.1 * 1 down: no class disappears from training by default.
    assert split_files(labels, PrepareOptions(val_fraction=0.1)) == set()
    again = split_files(labels, PrepareOptions(val_fraction=0.5, seed=3))
    assert again == split_files(labels, PrepareOptions(val_fraction=0.5, seed=3))


def test_resample_indices():
    np.testing.assert_array_equal(resample_indices(9, 120, 30), [0, 4, 8])
    np.testing.assert_array_equal(resample_indices(5, 30, 30), np.arange(5))
    idx = resample_indices(100, 50, 30)
    assert idx[0] == 0 and np.all(np.diff(idx) >= 1) and abs(len(idx) - 60) <= 1


def test_store_records_retarget_accuracy_and_is_complete(store):
    group, summary = store
    meta = group.attrs["posesynth"]
    assert meta["complete"] and meta["kind"] == "training" and meta["num_frames"] == summary.frames
    assert all(r["shared_joint_error_mm"] < 20 for r in group.attrs["retarget"].values())
    assert group.attrs["skeleton"]["parents"][:4] == [-1, 0, 0, 0]


def broken_copy(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(FIXTURES, data)
    bad = data / "bandai_namco" / "dataset-1" / "dataset-1_dash_normal_001.bvh"
    bad.write_text(bad.read_text()[: len(bad.read_text()) // 2])  # truncated mid-motion
    return data, bad


def test_bad_files_are_skipped_and_reported(tmp_path):
    data, bad = broken_copy(tmp_path)
    result = CliRunner().invoke(main, ["prepare", str(data), "--out", str(tmp_path / "t.zarr"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert f"skipped {bad}" in result.output
    assert "bandai_namco" in result.output and "total" in result.output
    group = open_store(tmp_path / "t.zarr")
    assert [s["file"] for s in group.attrs["skipped"]] == [str(bad)]


def test_strict_stops_at_the_first_bad_file_and_writes_nothing(tmp_path):
    data, bad = broken_copy(tmp_path)
    out = tmp_path / "t.zarr"
    result = CliRunner().invoke(main, ["prepare", str(data), "--out", str(out), "--strict", "--workers", "1"])
    assert result.exit_code != 0
    assert str(bad) in result.output and "--strict" in result.output
    assert not out.exists()
    with pytest.raises(PrepareError, match="strict"):
        prepare([data], out, PrepareOptions(strict=True, workers=1), progress=False)


def test_existing_store_needs_overwrite(tmp_path):
    out = tmp_path / "t.zarr"
    args = ["prepare", str(KICK_LEFT), "--out", str(out), "--workers", "1"]
    assert CliRunner().invoke(main, args).exit_code == 0
    again = CliRunner().invoke(main, args)
    assert again.exit_code != 0 and "--overwrite" in again.output
    assert CliRunner().invoke(main, args + ["--overwrite"]).exit_code == 0


def test_incomplete_store_is_refused(tmp_path):
    from posesynth.store import create_store

    create_store(tmp_path / "half.zarr", "training", {})
    with pytest.raises(StoreError, match="incomplete"):
        open_store(tmp_path / "half.zarr")


def test_parallel_and_serial_prepare_agree(tmp_path):
    a, b = tmp_path / "a.zarr", tmp_path / "b.zarr"
    prepare([FIXTURES], a, PrepareOptions(workers=1), progress=False)
    prepare([FIXTURES], b, PrepareOptions(workers=2), progress=False)
    ga, gb = open_store(a), open_store(b)
    for name in ("body_pose", "joints", "betas", "split", "file"):
        np.testing.assert_array_equal(ga[name][:], gb[name][:])


def test_prepare_without_a_split_recipe_uses_split_default():
    split = load_split()
    assert split.val_subjects == ["HDM_dg"] and "squat1Reps" in split.val_contents
    assert split == load_split(DEFAULT_SPLIT)


def test_a_partial_split_recipe_takes_the_rest_from_split_default(tmp_path):
    path = tmp_path / "split.toml"
    path.write_text('[split]\nval_subjects = ["HDM_bk"]\n')
    assert load_split(path) == dataclasses.replace(load_split(), val_subjects=["HDM_bk"])


@pytest.mark.parametrize("text, message", [
    ("[split]\nval_fraction = 1.5\n", "split.toml: split.val_fraction must be a number in [0, 1), got 1.5"),
    ('[split]\nval_subjects = "HDM_bd"\n', "split.toml: split.val_subjects must be a list of names, got 'HDM_bd'"),
    ("[split]\nval_file = 1\n", "split.toml: unknown key split.val_file"),
])
def test_a_bad_split_recipe_names_the_file_and_the_key(tmp_path, text, message):
    path = tmp_path / "split.toml"
    path.write_text(text)
    with pytest.raises(RecipeError, match=re.escape(message)):
        load_split(path)


def test_cli_split_flags_override_the_split_recipe(tmp_path):
    out = tmp_path / "t.zarr"
    args = ["prepare", str(FIXTURES), "--out", str(out), "--workers", "1", "--val-fraction", "0"]
    assert CliRunner().invoke(main, args).exit_code == 0
    rule = open_store(out).attrs["split_rule"]
    assert rule["val_subjects"] == ["HDM_dg"] and rule["val_fraction"] == 0.0  # the default recipe, one override
    result = CliRunner().invoke(main, args + ["--overwrite", "--val-subject", "HDM_bd"])
    assert result.exit_code == 0, result.output
    group = open_store(out)
    assert group.attrs["split_rule"]["val_subjects"] == ["HDM_bd"]
    assert (group["split"][:] == 1).sum() == 38  # the kick clip's 151 frames at 120 fps -> 38 at 30 fps


# ---------------------------------------------------------------------------- issue 13: nothing lost, nothing half-done
def one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: ") and "Traceback" not in result.output, result.output
    return result.output


def with_huge_hips_position(tmp_path):
    """The committed clips, with the dash clip's Hips Zposition 1e300 (finite in float64, not in
    float32) on its frame 5."""
    data = tmp_path / "data"
    shutil.copytree(FIXTURES, data)
    bad = data / "bandai_namco" / "dataset-1" / "dataset-1_dash_normal_001.bvh"
    lines = bad.read_text().split("\n")
    row = lines.index("MOTION") + 3 + 5
    values = lines[row].split()
    values[8] = "1e300"  # joint_Root's 6 channels, then Hips' Xposition, Yposition, Zposition
    lines[row] = " ".join(values)
    bad.write_text("\n".join(lines))
    return data, bad


def test_a_file_whose_values_are_not_finite_in_float32_is_skipped_and_listed(tmp_path):
    data, bad = with_huge_hips_position(tmp_path)
    summary = prepare([data], tmp_path / "t.zarr", PrepareOptions(workers=1), progress=False)
    assert [path for path, _ in summary.skipped] == [str(bad)]
    assert "not finite in the stored float32 (transl, joints), first at frame 5" in summary.skipped[0][1]
    group = open_store(tmp_path / "t.zarr")
    for name in ("global_orient", "body_pose", "betas", "transl", "joints"):
        assert np.isfinite(group[name][:]).all(), name
    assert "bandai_namco/dataset-1/dataset-1_dash_normal_001.bvh" not in group.attrs["labels"]["file"]


def test_strict_stops_at_a_file_whose_values_are_not_finite(tmp_path):
    data, bad = with_huge_hips_position(tmp_path)
    with pytest.raises(PrepareError, match=r"not finite in the stored float32(.|\n)*--strict"):
        prepare([data], tmp_path / "t.zarr", PrepareOptions(workers=1, strict=True), progress=False)
    assert not (tmp_path / "t.zarr").exists()


def test_when_no_file_can_be_used_the_error_lists_every_skipped_file(tmp_path):
    data = tmp_path / "bad"
    data.mkdir()
    for name in ("a.bvh", "b.bvh"):
        (data / name).write_text("HIERARCHY\nnot a skeleton\n")
    result = CliRunner().invoke(main, ["prepare", str(data), "--out", str(tmp_path / "t.zarr"), "--workers", "1"])
    assert result.exit_code == 1 and "see the errors above" not in result.output
    lines = result.output.splitlines()
    assert lines[0] == "error: no file could be used (2 skipped):"
    assert lines[1].startswith(f"skipped {data / 'a.bvh'}:") and lines[1].count(str(data / "a.bvh")) == 1
    assert lines[2].startswith(f"skipped {data / 'b.bvh'}:") and lines[2].count(str(data / "b.bvh")) == 1
    assert not (tmp_path / "t.zarr").exists()


def test_an_unknown_rig_is_named_before_any_file_is_read(tmp_path):
    result = CliRunner().invoke(main, ["prepare", str(FIXTURES), "--out", str(tmp_path / "t.zarr"), "--rig", "nosuchrig"])
    assert "--rig nosuchrig: unknown rig 'nosuchrig'; built-in rigs:" in one_line_error(result)


@pytest.mark.parametrize("fps", ["0", "-5", "nan"])
def test_fps_must_be_a_positive_number(tmp_path, fps):
    result = CliRunner().invoke(main, ["prepare", str(KICK_LEFT), "--out", str(tmp_path / "t.zarr"), "--fps", fps])
    assert "--fps must be a positive number of frames per second" in one_line_error(result)


@pytest.mark.parametrize("fraction", ["1.5", "-0.1", "1"])
def test_val_fraction_from_the_command_line_must_be_a_fraction(tmp_path, fraction):
    result = CliRunner().invoke(main, ["prepare", str(KICK_LEFT), "--out", str(tmp_path / "t.zarr"),
                                       "--val-fraction", fraction])
    assert f"--val-fraction must be a number in [0, 1), got {float(fraction)}" in one_line_error(result)


def test_a_body_model_with_a_nan_vertex_is_named(tmp_path):
    from posesynth.body_model import DEFAULT_BODY_MODEL

    arrays = dict(np.load(DEFAULT_BODY_MODEL))
    arrays["v_template"] = arrays["v_template"].copy()
    arrays["v_template"][10, 1] = np.nan
    model = tmp_path / "nan_body.npz"
    np.savez(model, **arrays)
    result = CliRunner().invoke(main, ["prepare", str(KICK_LEFT), "--out", str(tmp_path / "t.zarr"),
                                       "--body-model", str(model)])
    assert f"{model}: v_template holds NaN or infinite values" in one_line_error(result)


def test_summary_json_under_a_regular_file_fails_before_the_store_is_written(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    result = CliRunner().invoke(main, ["prepare", str(KICK_LEFT), "--out", str(tmp_path / "t.zarr"), "--workers", "1",
                                       "--summary-json", str(tmp_path / "file" / "summary.json")])
    assert f"{tmp_path / 'file'} is a file, not a folder" in one_line_error(result)
    assert not (tmp_path / "t.zarr").exists()


def test_a_failed_overwrite_keeps_the_old_training_store(tmp_path):
    out = tmp_path / "t.zarr"
    prepare([KICK_LEFT], out, PrepareOptions(workers=1), progress=False)
    frames = open_store(out)["frame"][:]
    data, _ = broken_copy(tmp_path)
    with pytest.raises(PrepareError, match="strict"):
        prepare([data], out, PrepareOptions(workers=1, strict=True), overwrite=True, progress=False)
    np.testing.assert_array_equal(open_store(out)["frame"][:], frames)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "t.zarr"]


def test_a_training_store_being_written_refuses_a_second_prepare(tmp_path):
    from posesynth.locking import exclusive_lock
    from posesynth.store import lock_path

    out = tmp_path / "t.zarr"
    with exclusive_lock(lock_path(out), str(out)):
        result = CliRunner().invoke(main, ["prepare", str(KICK_LEFT), "--out", str(out), "--overwrite"])
    assert f"{out} is being written by another process (pid " in one_line_error(result)
    assert not out.exists()
