"""`posesynth evaluate` over any pose source: the poses it judges are the ones `sample` writes,
and a source is refused on a validation split it learnt from."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from posesynth.cli import main
from posesynth.evaluate import evaluate, generate
from posesynth.pose_source import PoseSourceError, StorePoseSource
from posesynth.recombination import RecombinationPoseSource
from posesynth.rotations import matrix_to_axis_angle
from posesynth.sample_recipe import resolve_sample_recipe
from posesynth.sampling import sample_to_store
from posesynth.store import open_store
from test_sampling import NO_AUGMENT, SMALL, training_store


@pytest.fixture(scope="module")
def train(tmp_path_factory):
    return training_store(tmp_path_factory)


def quiet(message):
    pass


def test_evaluate_seed_judges_the_poses_sample_seed_writes(tmp_path, train):
    source = StorePoseSource(train)
    recipe = resolve_sample_recipe(overrides=SMALL + NO_AUGMENT + ['sample.keypoint_sets=["smpl24"]'])
    store = open_store(sample_to_store(source, tmp_path / "s.zarr", 200, seed=5, recipe=recipe, device="cpu").out)
    rotmats, betas = generate(source, 200, seed=5, block_size=recipe.sample.block_size)
    assert np.array_equal(matrix_to_axis_angle(rotmats[:, 0]).numpy(), store["smpl/global_orient"][:])
    assert np.array_equal(matrix_to_axis_angle(rotmats[:, 1:]).flatten(1).numpy(), store["smpl/body_pose"][:])
    assert np.array_equal(betas.numpy(), store["smpl/betas"][:])


def test_generate_draws_whole_blocks_so_fewer_poses_are_the_first_of_more(train):
    source = StorePoseSource(train)
    few, _ = generate(source, 50, seed=1, block_size=128)
    more, _ = generate(source, 300, seed=1, block_size=128)
    assert torch.equal(few, more[:50])


def test_evaluate_judges_a_recombination_source(train):
    result = evaluate(RecombinationPoseSource(train), train, n=200, log=quiet)
    assert result["source"].startswith("recombination(train.zarr:train")
    assert [row["n"] for row in result["sets"]][:1] == [200] and "conditional" not in result


def test_a_source_of_the_validation_split_is_refused(train):
    with pytest.raises(PoseSourceError, match=r"was trained on \d+ of .*train.zarr's validation split's files"):
        evaluate(StorePoseSource(train, split="val"), train, n=200, log=quiet)


def test_the_evaluate_command_takes_a_training_store_as_its_source(train):
    result = CliRunner().invoke(main, ["evaluate", "--checkpoint", str(train), "--data", str(train), "--n", "200",
                                       "--no-conditional"])
    assert result.exit_code == 0, result.output
    assert "| posesynth (N=200) |" in result.output
