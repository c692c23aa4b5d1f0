"""The shipped recipes are the only defaults: each loads complete, and loading nothing gives it."""

import dataclasses

import pytest

from posesynth.config import Recipe, RecipeError, read_recipe
from posesynth.gan.checkpoint import DEFAULT_CHECKPOINT, read_checkpoint_file
from posesynth.gan.recipe import DEFAULT_TRAIN_RECIPE, TrainRecipe, load_train_recipe
from posesynth.prepare import DEFAULT_SPLIT, SplitRecipe
from posesynth.resources import recipe_path

RECIPES = [(TrainRecipe, DEFAULT_TRAIN_RECIPE), (SplitRecipe, DEFAULT_SPLIT)]


@pytest.mark.parametrize("kind, path", RECIPES, ids=lambda v: getattr(v, "__name__", None))
def test_the_shipped_file_lists_every_key(kind, path):
    assert kind.from_dict(read_recipe(path), str(path)).to_dict() == read_recipe(path)


@pytest.mark.parametrize("kind", [kind for kind, _ in RECIPES], ids=lambda k: k.__name__)
def test_no_section_field_has_a_default_that_could_drift_from_the_toml(kind: type[Recipe]):
    for section, _ in kind.sections().values():
        assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(section)), section.__name__


def test_train_without_a_recipe_is_the_recipe_of_the_shipped_checkpoint():
    assert load_train_recipe().to_dict() == read_checkpoint_file(DEFAULT_CHECKPOINT)["recipe"]
    assert load_train_recipe() == load_train_recipe(recipe_path("gan_default"))


def test_a_partial_train_recipe_takes_the_rest_from_gan_default(tmp_path):
    path = tmp_path / "short.toml"
    path.write_text("[train]\nsteps = 500\n")
    assert load_train_recipe(path) == dataclasses.replace(
        load_train_recipe(), train=dataclasses.replace(load_train_recipe().train, steps=500))


def test_an_unknown_train_key_names_the_file_and_the_key(tmp_path):
    path = tmp_path / "recipe.toml"
    path.write_text("[train]\nstepz = 500\n")
    with pytest.raises(RecipeError, match="recipe.toml: unknown key train.stepz; known: adam_beta1"):
        load_train_recipe(path)


def test_a_train_value_of_the_wrong_type_names_the_file_and_the_key(tmp_path):
    path = tmp_path / "recipe.toml"
    path.write_text('[train]\nsteps = "many"\n')
    with pytest.raises(RecipeError, match="recipe.toml: train.steps must be a whole number, got 'many'"):
        load_train_recipe(path)


def test_the_network_sizes_are_the_model_section():
    assert load_train_recipe(overrides=["model.width=64"]).model.width == 64
    with pytest.raises(RecipeError, match="model.blocks must be >= 1, got 0"):
        load_train_recipe(overrides=["model.blocks=0"])
