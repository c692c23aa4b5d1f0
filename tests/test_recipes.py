"""The shipped recipes are the only defaults: each loads complete, and loading nothing gives it."""

import dataclasses
import json

import pytest

from posesynth.adapt.recipe import DEFAULT_ADAPT_RECIPE, AdaptRecipe
from posesynth.cameras import CameraDistribution
from posesynth.config import Recipe, RecipeError, read_recipe
from posesynth.gan.checkpoint import DEFAULT_CHECKPOINT, read_checkpoint_file
from posesynth.gan.recipe import DEFAULT_TRAIN_RECIPE, TrainRecipe, load_train_recipe
from posesynth.prepare import DEFAULT_SPLIT, SplitRecipe
from posesynth.resources import recipe_path
from posesynth.sample_recipe import (
    DEFAULT_SAMPLE_RECIPE, CameraSection, SampleRecipe, resolve_sample_recipe, validate_sample_recipe,
)

RECIPES = [(TrainRecipe, DEFAULT_TRAIN_RECIPE), (SplitRecipe, DEFAULT_SPLIT), (AdaptRecipe, DEFAULT_ADAPT_RECIPE)]


@pytest.mark.parametrize("kind, path", RECIPES, ids=lambda v: getattr(v, "__name__", None))
def test_the_shipped_file_lists_every_key(kind, path):
    assert kind.from_dict(read_recipe(path), str(path)).to_dict() == read_recipe(path)


def test_the_shipped_sample_recipe_lists_every_key_but_the_camera_presets():
    shipped, resolved = read_recipe(DEFAULT_SAMPLE_RECIPE), resolve_sample_recipe().to_dict()
    assert {k: v for k, v in shipped.items() if k != "camera"} == {k: v for k, v in resolved.items() if k != "camera"}
    assert shipped["camera"].items() <= resolved["camera"].items()


@pytest.mark.parametrize("kind, path", [*RECIPES, (SampleRecipe, DEFAULT_SAMPLE_RECIPE)],
                         ids=lambda v: getattr(v, "__name__", None))
def test_no_section_default_differs_from_the_shipped_recipe(kind: type[Recipe], path):
    """Sections have no field defaults (the TOML gives every value), or library defaults equal to it."""
    shipped = read_recipe(path)
    for name, (section, _) in kind.sections().items():
        for f in dataclasses.fields(section):
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
                default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
                assert default == shipped[name][f.name], f"{section.__name__}.{f.name}"


def test_the_camera_section_has_every_camera_distribution_key():
    keys = {f.name for f in dataclasses.fields(CameraSection)}
    assert keys == {"preset"} | {f.name for f in dataclasses.fields(CameraDistribution)}


def test_sample_without_a_recipe_uses_sample_default():
    assert resolve_sample_recipe() == resolve_sample_recipe(DEFAULT_SAMPLE_RECIPE)


def test_an_unknown_sample_key_names_the_file_and_the_key(tmp_path):
    path = tmp_path / "recipe.toml"
    path.write_text("[sample]\nblock_sise = 64\n")
    with pytest.raises(RecipeError, match="recipe.toml: unknown key sample.block_sise; known: betas, block_size"):
        resolve_sample_recipe(path)


def test_a_sample_value_of_the_wrong_type_names_the_override():
    with pytest.raises(RecipeError, match="--set sample.noise=1: sample.noise must be true or false, got 1"):
        resolve_sample_recipe(overrides=["sample.noise=1"])


def test_a_store_recipe_reads_back_as_the_same_recipe():
    recipe = resolve_sample_recipe(overrides=['camera.preset="in_the_wild"', "camera.views=2"])
    assert validate_sample_recipe(json.loads(json.dumps(recipe.to_dict()))) == recipe


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


def test_prepare_options_default_to_the_shipped_split():
    from posesynth.prepare import PrepareOptions, load_split

    split, opts = load_split(), PrepareOptions()
    assert (opts.val_fraction, opts.val_subjects, opts.val_contents, opts.seed) == (
        split.val_fraction, tuple(split.val_subjects), tuple(split.val_contents), split.seed)
