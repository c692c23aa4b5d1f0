import pytest

from posesynth.config import RecipeError, parse_override, resolve_recipe

DEFAULTS = {"train": {"steps": 10, "lr": 1e-3, "name": "x"}, "loss": {"r1": 1.0, "weights": [1, 2]}}


def test_file_then_overrides_win(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text("[train]\nsteps = 20\n[loss]\nr1 = 0.5\n")
    recipe = resolve_recipe(DEFAULTS, path, ["train.steps=30", "loss.weights=[3, 4]", "train.name=abc"])
    assert recipe == {"train": {"steps": 30, "lr": 1e-3, "name": "abc"}, "loss": {"r1": 0.5, "weights": [3, 4]}}
    assert DEFAULTS["train"]["steps"] == 10  # defaults untouched


@pytest.mark.parametrize("override, message", [
    ("train.stepz=3", "unknown key train.stepz"),
    ("trian.steps=3", "unknown section"),
    ("steps=3", "section.key"),
    ("train.steps", "section.key=value"),
])
def test_bad_overrides_are_named(override, message):
    with pytest.raises(RecipeError, match=message):
        resolve_recipe(DEFAULTS, None, [override])


def test_bad_file_is_named(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[train\n")
    with pytest.raises(RecipeError, match="bad.toml: not valid TOML"):
        resolve_recipe(DEFAULTS, path)
    with pytest.raises(RecipeError, match="recipe not found"):
        resolve_recipe(DEFAULTS, tmp_path / "missing.toml")


def test_parse_override_values():
    assert parse_override("a.b=true") == (["a", "b"], True)
    assert parse_override("a.b=[1.5, 2]") == (["a", "b"], [1.5, 2])
    assert parse_override("a.b=plain") == (["a", "b"], "plain")
