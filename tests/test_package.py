"""posesynth as a package: the files it reads at run time are package data, shipped recipes are
named by name, and a command whose optional extra is missing says which one to install."""

import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import posesynth
from posesynth.body_model import DEFAULT_BODY_MODEL
from posesynth.cameras import CAMERA_PRESETS, CAMERA_PRESETS_DIR
from posesynth.cli import main
from posesynth.config import RecipeError
from posesynth.errors import MissingExtraError, PosesynthError
from posesynth.gan.checkpoint import DEFAULT_CHECKPOINT
from posesynth.plots import plot_training_curves
from posesynth.prepare import DEFAULT_SPLIT
from posesynth.render import draw_keypoints, gl
from posesynth.render.mpl import MatplotlibRenderer
from posesynth.resources import packaged_path, recipe_path, shipped_recipes
from posesynth.sample_recipe import DEFAULT_SAMPLE_RECIPE
from test_errors import error_line

PACKAGE = Path(posesynth.__file__).parent


# ---------------------------------------------------------------------------- packaged files
@pytest.mark.parametrize("path", [DEFAULT_BODY_MODEL, DEFAULT_CHECKPOINT, DEFAULT_SPLIT, DEFAULT_SAMPLE_RECIPE],
                         ids=lambda p: p.name)
def test_every_default_file_is_inside_the_package(path):
    assert path.is_file() and path.is_relative_to(PACKAGE)


def test_every_camera_preset_is_a_packaged_file():
    assert CAMERA_PRESETS_DIR == packaged_path("recipes", "cameras")
    assert sorted(p.stem for p in CAMERA_PRESETS_DIR.glob("*.toml")) == sorted(CAMERA_PRESETS)


def test_the_shipped_recipes_are_the_toml_files_of_the_recipes_folder():
    assert list(shipped_recipes()) == [
        "adapt_default", "gan_default", "sample_default", "sample_multiview", "split_default"]
    assert shipped_recipes()["sample_default"] == DEFAULT_SAMPLE_RECIPE


# ---------------------------------------------------------------------------- recipes by name
def test_a_recipe_is_found_by_its_shipped_name():
    assert recipe_path("sample_multiview") == packaged_path("recipes", "sample_multiview.toml")


def test_a_recipe_file_is_taken_as_it_is_even_under_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("sample_multiview").write_text("[sample]\n")
    assert recipe_path("sample_multiview") == Path("sample_multiview")


def test_neither_a_file_nor_a_shipped_name_lists_the_shipped_recipes(tmp_path):
    with pytest.raises(RecipeError, match="nor the name of a shipped recipe .adapt_default, gan_default, sample_default, "
                                          "sample_multiview, split_default.") as err:
        recipe_path(tmp_path / "missing.toml")
    assert str(tmp_path / "missing.toml") in str(err.value)


def test_the_recipe_option_names_itself_and_the_shipped_recipes(tmp_path):
    result = CliRunner().invoke(main, ["sample", "--n", "1", "--out", tmp_path / "s.zarr", "--recipe", "multiview"])
    assert result.exit_code == 2
    assert "Invalid value for '--recipe': multiview: no such recipe file" in result.output
    assert "sample_multiview" in result.output


# ---------------------------------------------------------------------------- optional extras
def test_a_missing_extra_is_a_posesynth_error_and_an_import_error():
    assert issubclass(MissingExtraError, PosesynthError) and issubclass(MissingExtraError, ImportError)


@pytest.mark.parametrize("module", ["PIL", "moderngl", "matplotlib"])
def test_render_without_the_render_extra_names_it(tmp_path, monkeypatch, module):
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed: importing it fails
    line = error_line(["render", "--checkpoint", DEFAULT_CHECKPOINT, "--out", tmp_path / "grid.png"])
    assert line == "error: posesynth render needs the [render] extra: pip install 'posesynth[render]'\n"
    assert not (tmp_path / "grid.png").exists()


@pytest.mark.parametrize("command", ["info", "evaluate"])
def test_plots_without_the_render_extra_name_it_before_any_work(tmp_path, monkeypatch, command):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    args = [command, tmp_path] if command == "info" else [command, "--data", tmp_path]
    line = error_line([*args, "--plots", tmp_path / "plots"])
    assert line == f"error: posesynth {command} --plots needs the [render] extra: pip install 'posesynth[render]'\n"


def test_a_plot_without_matplotlib_names_the_render_extra(tmp_path, monkeypatch):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "d_loss": 0.5}\n')
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingExtraError, match=r"^plotting needs the \[render\] extra: pip install 'posesynth\[render\]'$"):
        plot_training_curves(tmp_path / "metrics.jsonl", tmp_path / "curves.png")


def _render_extra(needed_by: str) -> str:
    """The pattern of require_extra's message for the [render] extra."""
    return rf"^{needed_by} needs the \[render\] extra: pip install 'posesynth\[render\]'$"


def test_drawing_keypoints_without_pillow_names_the_render_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(MissingExtraError, match=_render_extra("drawing keypoints")):
        draw_keypoints(np.zeros((4, 4, 3), np.uint8), np.zeros((1, 2)))


def test_the_matplotlib_renderer_without_matplotlib_names_the_render_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingExtraError, match=_render_extra("the matplotlib renderer")):
        MatplotlibRenderer(np.array([[0, 1, 2]]), 3)


@pytest.fixture
def no_moderngl(monkeypatch):
    """As if moderngl were not installed and no GL context made yet."""
    monkeypatch.setattr(gl, "_GL_CONTEXT", None)
    monkeypatch.setattr(gl, "_GL_ERROR", None)
    monkeypatch.setitem(sys.modules, "moderngl", None)


def test_the_gl_renderer_without_moderngl_names_the_render_extra(no_moderngl):
    with pytest.raises(MissingExtraError, match=_render_extra("the GL renderer")):
        gl.GLRenderer(np.array([[0, 1, 2]]), 3)


def test_gl_is_unavailable_without_moderngl_and_says_why(no_moderngl):
    ok, why = gl.gl_available()
    assert not ok and why == "the GL renderer needs the [render] extra: pip install 'posesynth[render]'"


def test_sample_dask_without_the_dask_extra_names_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    line = error_line(["sample", "--n", "10", "--out", tmp_path / "s.zarr", "--dask", "local:1"])
    assert line == "error: posesynth sample --dask needs the [dask] extra: pip install 'posesynth[dask]'\n"
    assert not (tmp_path / "s.zarr").exists()
