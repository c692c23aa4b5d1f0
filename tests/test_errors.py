"""One-line errors (issue 13): every PosesynthError, from any command, is printed as
``error: <message>`` naming the file or option, with exit status 1 and no traceback; files that
are not posesynth's are named as such and never loaded; oversized pictures are refused."""

import importlib
import pkgutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import posesynth
from conftest import KICK_LEFT
from posesynth.body_model import DEFAULT_BODY_MODEL
from posesynth.cli import CommandError, main
from posesynth.config import RecipeError
from posesynth.gan.checkpoint import DEFAULT_CHECKPOINT
from posesynth.errors import PosesynthError, UsageError
from posesynth.render import RenderError, parse_indices
from test_sampling import sample_store, training_store


def error_classes() -> list[type]:
    """Every exception class a posesynth module defines, but the CLI's rendering of one
    (``cli.CommandError``, a click exception) and the base itself."""
    found = []
    for info in pkgutil.walk_packages(posesynth.__path__, "posesynth."):
        module = importlib.import_module(info.name)
        found += [cls for cls in vars(module).values() if isinstance(cls, type) and issubclass(cls, BaseException)
                  and cls.__module__ == info.name and cls not in (PosesynthError, CommandError)]
    return found


ERROR_CLASSES = error_classes()


def random_bytes(size: int, seed: int = 0) -> bytes:
    """``size`` bytes that look like noise, the same on every run."""
    return np.random.default_rng(seed).bytes(size)


def error_line(args) -> str:
    """Run the CLI; assert it printed exactly one line ``error: ...`` and exited with status 1."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1, result.output
    assert "Traceback" not in result.output
    return result.output


def test_the_error_classes_are_found():
    assert len(ERROR_CLASSES) >= 19 and RecipeError in ERROR_CLASSES and RenderError in ERROR_CLASSES


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_class_is_a_posesynth_error_and_keeps_its_builtin_base(cls):
    assert issubclass(cls, PosesynthError) and issubclass(cls, (ValueError, RuntimeError, ImportError))


def test_a_posesynth_error_from_a_nested_command_is_one_line(tmp_path):
    assert "lifter not found" in error_line(["lift", "eval", tmp_path / "none.pt", "--data", tmp_path])


# ---------------------------------------------------------------------------- 5. the listed cases
@pytest.mark.parametrize("missing", ["state", "config"])
def test_a_lifter_file_without_its_state_or_config_is_named(tmp_path, missing):
    payload = {"format": "posesynth-lifter", "format_version": 1, "config": {}, "body_model": None,
               "training": {}, "state": {}}
    del payload[missing]
    path = tmp_path / "l.pt"
    torch.save(payload, path)
    assert f"{path}: not a complete posesynth lifter: it has no '{missing}'" in \
        error_line(["lift", "eval", path, "--data", tmp_path])


@pytest.mark.parametrize(("setting", "message"), [
    ("train.steps=abc", "train.steps must be a whole number, got 'abc'"),
    ("train.batch_size=0", "train.batch_size must be >= 1, got 0"),
    ("train.steps=-1", "train.steps must be >= 1, got -1"),
    ("train.lr_g=0", "train.lr_g must be > 0, got 0"),
    ("train.ema=1.5", "train.ema must be in [0, 1), got 1.5"),
    ("data.label_field=3", "data.label_field must be text, got 3"),
])
def test_gan_training_settings_are_checked_before_any_work(tmp_path, setting, message):
    out = tmp_path / "run"
    assert message in error_line(["train", "--data", tmp_path, "--out", out, "--set", setting])
    assert not out.exists()


@pytest.mark.parametrize(("setting", "message"), [
    ("steps=abc", "lifter setting steps must be a whole number, got 'abc'"),
    ("batch_size=0", "lifter setting batch_size must be >= 1, got 0"),
    ("lr=-1", "lifter setting lr must be > 0, got -1"),
    ("noisy=3", "lifter setting noisy must be true or false, got 3"),
])
def test_lifter_settings_are_checked_before_any_work(tmp_path, setting, message):
    assert message in error_line(["lift", "train", "--data", tmp_path, "--out", tmp_path / "l.pt", "--set", setting])


@pytest.mark.parametrize("size", ["0", "-3"])
def test_render_size_must_be_at_least_one_pixel(tmp_path, size):
    assert f"--size must be a cell size of at least 1 pixel, got {int(size)}" in \
        error_line(["render", tmp_path, "--out", tmp_path / "g.png", "--size", size])


@pytest.mark.parametrize(("command", "option", "value"), [
    (["render", "--checkpoint", "{tmp}", "--out", "{tmp}/g.png"], "--n", "0"),
    (["render", "--checkpoint", "{tmp}", "--out", "{tmp}/g.png"], "--n", "-3"),
    (["evaluate", "--checkpoint", "{tmp}", "--data", "{tmp}"], "--n", "0"),
    (["lift", "eval", "{tmp}/l.pt", "--data", "{tmp}"], "--hypotheses", "0"),
    (["lift", "predict", "{tmp}/l.pt", "--keypoints", "{tmp}"], "--hypotheses", "-1"),
])
def test_a_count_below_its_minimum_is_refused_by_its_option(tmp_path, command, option, value):
    result = CliRunner().invoke(main, [a.format(tmp=tmp_path) for a in command] + [option, value])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert f"Invalid value for '{option}': {value} is not in the range" in result.output


@pytest.mark.parametrize("command", [
    ["train", "--data", "{tmp}", "--out", "{tmp}/run"],
    ["lift", "train", "--data", "{tmp}", "--out", "{tmp}/l.pt"],
])
def test_an_unknown_device_is_named(tmp_path, command):
    args = [a.format(tmp=tmp_path) for a in command] + ["--device", "tpu"]
    assert "--device tpu: not a device (use auto, cpu, cuda or cuda:N)" in error_line(args)


@pytest.mark.parametrize("command", [
    ["sample", "--n", "10", "--out", "{tmp}/s.zarr", "--recipe", "{recipe}"],
    ["train", "--data", "{tmp}", "--out", "{tmp}/run", "--recipe", "{recipe}"],
])
def test_a_binary_recipe_file_is_named(tmp_path, command):
    recipe = tmp_path / "recipe.toml"
    recipe.write_bytes(random_bytes(64) + b"\xff\xfe")
    args = [a.format(tmp=tmp_path, recipe=recipe) for a in command]
    assert f"error: {recipe}: not a TOML recipe: not UTF-8 text" in error_line(args)


def test_read_recipe_names_a_folder_given_as_a_recipe(tmp_path):
    from posesynth.config import read_recipe

    with pytest.raises(RecipeError, match=f"{tmp_path}: cannot read the recipe: it is a folder"):
        read_recipe(tmp_path)


# ---------------------------------------------------------------------------- 7. foreign files
class NeverUnpickled:
    """Fails the test if any loader ever runs it."""

    def __reduce__(self):
        return (pytest.fail, ("a posesynth loader ran a pickle",))


def test_a_malicious_torch_file_is_not_loaded_and_no_unsafe_advice_is_given(tmp_path):
    path = tmp_path / "l.pt"
    torch.save({"format": "posesynth-lifter", "state": NeverUnpickled()}, path)
    message = error_line(["lift", "eval", path, "--data", tmp_path])
    assert f"{path}: not a readable lifter: not a posesynth file" in message and "was not loaded" in message
    assert "weights_only" not in message and "trusted" not in message


@pytest.mark.parametrize("seed", range(8))
def test_random_bytes_as_a_torch_file_are_named_not_a_posesynth_file(tmp_path, seed):
    path = tmp_path / "c.pt"
    path.write_bytes(random_bytes(4096, seed))
    message = error_line(["sample", "--n", "10", "--out", tmp_path / "s.zarr", "--checkpoint", path])
    assert f"{path}: not a readable posesynth checkpoint (not a torch.save archive)" in message


def test_a_truncated_checkpoint_is_named_not_readable(tmp_path):
    path = tmp_path / "c.pt"
    path.write_bytes(DEFAULT_CHECKPOINT.read_bytes()[:-4096])
    message = error_line(["sample", "--n", "10", "--out", tmp_path / "s.zarr", "--checkpoint", path])
    assert f"{path}: not a readable posesynth checkpoint" in message and "weights_only" not in message


def test_an_npz_body_model_with_pickled_objects_is_not_loaded_and_no_unsafe_advice_is_given(tmp_path):
    arrays = dict(np.load(DEFAULT_BODY_MODEL))
    arrays["extra"] = np.array([NeverUnpickled()], dtype=object)
    model = tmp_path / "body.npz"
    np.savez(model, **arrays)
    message = error_line(["prepare", KICK_LEFT, "--out", tmp_path / "t.zarr", "--body-model", model])
    assert f"{model}: holds pickled Python objects" in message and "was not loaded" in message
    assert "allow_pickle" not in message


def test_random_bytes_as_an_npz_body_model_are_not_called_pickled(tmp_path):
    model = tmp_path / "body.npz"
    model.write_bytes(random_bytes(4096))
    message = error_line(["prepare", KICK_LEFT, "--out", tmp_path / "t.zarr", "--body-model", model])
    assert "not a readable .npz body model (not a zip archive of arrays)" in message and "pickle" not in message


def test_random_bytes_as_an_npz_keypoint_file_are_not_called_pickled(tmp_path):
    from posesynth.mocap import MocapFormatError
    from posesynth.mocap.keypoints import read_keypoints

    path = tmp_path / "clip.npz"
    path.write_bytes(random_bytes(4096))
    expected = r"clip.npz: not a readable .npz keypoint clip \(not a zip archive of arrays\)"
    with pytest.raises(MocapFormatError, match=expected):
        read_keypoints(path)


def test_an_npz_keypoint_file_with_an_object_array_is_named_and_not_loaded(tmp_path):
    from posesynth.keypoint_files import load_keypoint_arrays

    path = tmp_path / "k.npz"
    np.savez(path, keypoints=np.array([NeverUnpickled()], dtype=object))
    with pytest.raises(UsageError, match=r"k.npz: holds pickled Python objects, so it was not loaded") as err:
        load_keypoint_arrays(path, UsageError)
    assert "allow_pickle" not in str(err.value)


# ---------------------------------------------------------------------------- 7. oversized pictures
def test_render_refuses_an_index_that_selects_more_samples_than_a_grid_holds(tmp_path, tmp_path_factory):
    store = sample_store(tmp_path_factory)
    message = error_line(["render", store, "--index", "0:100000000", "--size", "2048", "--out", tmp_path / "g.png"])
    assert "--index 0:100000000 selects 1,500 samples; one grid of cells this size holds at most 23" in message
    assert not (tmp_path / "g.png").exists()


def test_an_index_range_is_counted_without_being_listed():
    with pytest.raises(RenderError, match="selects 100,000,000 samples"):
        parse_indices("0:100000000", 10**12, limit=375)


def test_render_from_a_checkpoint_refuses_a_grid_over_the_pixel_limit_before_sampling(tmp_path, tmp_path_factory):
    train = training_store(tmp_path_factory)
    message = error_line(["render", "--checkpoint", train, "--n", "1000", "--out", tmp_path / "g.png"])
    assert "1,000 samples in a 32 x 32 grid of 512 px cells make a 16,508 x 16,508 picture" in message
    assert "over the 100 megapixel limit" in message


def test_render_from_a_checkpoint_refuses_more_cells_than_a_grid_draws_however_small(tmp_path, tmp_path_factory):
    train = training_store(tmp_path_factory)
    message = error_line(["render", "--checkpoint", train, "--n", "20000", "--size", "1", "--out", tmp_path / "g.png"])
    assert "20,000 samples asked; one grid draws at most 10,000" in message


def test_render_refuses_an_index_over_the_cell_limit_before_reading_samples(tmp_path, tmp_path_factory, monkeypatch):
    from posesynth.render import samples

    monkeypatch.setattr(samples, "read_rows", lambda *a: pytest.fail("samples were read"))
    store = sample_store(tmp_path_factory)
    index = ",".join(["0:1500"] * 7)
    message = error_line(["render", store, "--index", index, "--size", "1", "--out", tmp_path / "g.png"])
    assert "selects 10,500 samples; one grid of cells this size holds at most 10,000" in message
    assert "--size" not in message  # smaller cells would not help


def test_a_single_cell_too_large_is_one_sample(tmp_path, tmp_path_factory):
    store = sample_store(tmp_path_factory)
    message = error_line(["render", store, "--index", "0:4", "--size", "100000", "--out", tmp_path / "g.png"])
    assert "1 sample in a 1 x 1 grid of 100000 px cells makes a 100,000 x 100,000 picture" in message


def test_a_grid_narrower_than_its_columns_is_as_wide_as_its_samples():
    from posesynth.render import grid_shape

    assert grid_shape(3, 100, cols=1000) == (3, 1, 3 * 104 - 4, 100)


def test_a_default_grid_is_within_the_limit():
    from posesynth.render import check_grid

    check_grid(16, 512)
    check_grid(256, 512)
