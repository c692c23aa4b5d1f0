"""posesynth.config: recipes merged over a complete base, read into checked frozen dataclasses."""

import re
from dataclasses import dataclass

import pytest

from posesynth.config import (
    AT_LEAST_ONE, POSITIVE, Recipe, RecipeError, Section, load_recipe, parse_override, ruled,
)


@dataclass(frozen=True)
class Run(Section):
    NAME = "run"

    steps: int = ruled(AT_LEAST_ONE)
    lr: float = ruled(POSITIVE)
    name: str
    fast: bool


@dataclass(frozen=True)
class Window(Section):
    NAME = "window"

    lo: float
    hi: float
    tags: list[str]

    def check(self) -> None:
        if self.lo > self.hi:
            raise RecipeError(f"window.lo ({self.lo}) must be <= window.hi ({self.hi})")


@dataclass(frozen=True)
class Toy(Recipe):
    run: Run
    window: Window | None


BASE = {"run": {"steps": 10, "lr": 1e-3, "name": "x", "fast": False}, "window": {"lo": 0.0, "hi": 1.0, "tags": []}}


def load(tmp_path, text=None, overrides=()):
    path = None
    if text is not None:
        path = tmp_path / "r.toml"
        path.write_text(text)
    return load_recipe(Toy, BASE, "base.toml", path, overrides)


def test_the_base_gives_every_value(tmp_path):
    assert load(tmp_path) == Toy(Run(10, 1e-3, "x", False), Window(0.0, 1.0, []))


def test_the_file_then_the_overrides_win(tmp_path):
    recipe = load(tmp_path, "[run]\nsteps = 20\nlr = 0.5\n", ["run.steps=30", 'window.tags=["a"]'])
    assert (recipe.run.steps, recipe.run.lr, recipe.window.tags) == (30, 0.5, ["a"])
    assert BASE["run"]["steps"] == 10  # the base is untouched


def test_to_dict_gives_the_plain_tables_back(tmp_path):
    recipe = load(tmp_path, overrides=["run.name=y"])
    assert recipe.to_dict() == {**BASE, "run": {**BASE["run"], "name": "y"}}
    assert Toy.from_dict(recipe.to_dict(), "again") == recipe


def test_an_optional_section_may_be_absent():
    recipe = Toy.from_dict({"run": BASE["run"]}, "old.toml")
    assert recipe.window is None and recipe.to_dict() == {"run": BASE["run"]}


def test_a_missing_section_is_named():
    with pytest.raises(RecipeError, match=r"old.toml: missing section \[run\]"):
        Toy.from_dict({"window": BASE["window"]}, "old.toml")


def test_a_missing_key_is_named():
    with pytest.raises(RecipeError, match="old.toml: missing key.s. run.fast"):
        Toy.from_dict({"run": {"steps": 1, "lr": 1.0, "name": "x"}}, "old.toml")


def test_an_unknown_key_in_a_file_names_the_file_and_the_key(tmp_path):
    with pytest.raises(RecipeError, match=r"r.toml: unknown key run.stepz; known: fast, lr, name, steps"):
        load(tmp_path, "[run]\nstepz = 3\n")


def test_an_unknown_section_is_named(tmp_path):
    with pytest.raises(RecipeError, match=r"r.toml: unknown section \[rn\]; known: run, window"):
        load(tmp_path, "[rn]\nsteps = 3\n")


def test_a_section_that_is_not_a_table_is_named(tmp_path):
    with pytest.raises(RecipeError, match=r"r.toml: \[run\] must be a table"):
        load(tmp_path, "run = 3\n")


@pytest.mark.parametrize("text, message", [
    ('[run]\nsteps = "many"\n', "run.steps must be a whole number, got 'many'"),
    ("[run]\nsteps = 1.5\n", "run.steps must be a whole number, got 1.5"),
    ("[run]\nsteps = true\n", "run.steps must be a whole number, got True"),
    ('[run]\nlr = "fast"\n', "run.lr must be a finite number, got 'fast'"),
    ("[run]\nlr = inf\n", "run.lr must be a finite number, got inf"),
    ("[run]\nname = 3\n", "run.name must be text, got 3"),
    ("[run]\nfast = 1\n", "run.fast must be true or false, got 1"),
    ('[window]\ntags = "a"\n', "window.tags must be a list of names, got 'a'"),
])
def test_a_value_of_the_wrong_type_names_the_file_and_the_key(tmp_path, text, message):
    with pytest.raises(RecipeError, match=re.escape(f"r.toml: {message}")):
        load(tmp_path, text)


def test_a_value_out_of_its_fields_range_is_named(tmp_path):
    with pytest.raises(RecipeError, match=r"r.toml: run.steps must be >= 1, got 0"):
        load(tmp_path, "[run]\nsteps = 0\n")


def test_an_override_of_the_wrong_type_names_the_override():
    with pytest.raises(RecipeError, match=r"--set run.lr=0: run.lr must be > 0, got 0"):
        load_recipe(Toy, BASE, "base.toml", None, ["run.lr=0"])


def test_the_rules_between_keys_apply_to_the_merged_recipe(tmp_path):
    assert load(tmp_path, overrides=["window.hi=5", "window.lo=3"]).window == Window(3, 5, [])
    with pytest.raises(RecipeError, match=r"r.toml: window.lo \(3\) must be <= window.hi \(1.0\)"):
        load(tmp_path, "[window]\nlo = 3\n")


@pytest.mark.parametrize("override, message", [
    ("run.stepz=3", "--set run.stepz=3: unknown key run.stepz"),
    ("rnu.steps=3", "unknown section"),
    ("steps=3", "section.key"),
    ("run.steps", "section.key=value"),
])
def test_bad_overrides_are_named(override, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe(Toy, BASE, "base.toml", None, [override])


def test_a_bad_file_is_named(tmp_path):
    with pytest.raises(RecipeError, match="r.toml: not valid TOML"):
        load(tmp_path, "[run\n")
    with pytest.raises(RecipeError, match="recipe not found"):
        load_recipe(Toy, BASE, "base.toml", tmp_path / "missing.toml")


def test_parse_override_values():
    assert parse_override("a.b=true") == (["a", "b"], True)
    assert parse_override("a.b=[1.5, 2]") == (["a", "b"], [1.5, 2])
    assert parse_override("a.b=plain") == (["a", "b"], "plain")
