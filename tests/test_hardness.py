"""Hardness feedback: a reference lifter's error decides which candidate samples are kept."""

import numpy as np
import pytest
import torch

from posesynth.cameras import load_camera_preset
from posesynth.config import RecipeError
from posesynth.hardness import HardnessSelector
from posesynth.lifting.checkpoint import LifterConfig, save_lifter
from posesynth.lifting.train import train_lifter
from posesynth.rotations import axis_angle_to_matrix
from posesynth.sample_recipe import resolve_sample_recipe
from posesynth.sampling import sample_to_store
from test_sampling import NO_AUGMENT, SMALL, sample_store, training_store


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A small MLP lifter trained on the fixture clips' real poses."""
    path = tmp_path_factory.mktemp("hard") / "reference.pt"
    config = LifterConfig(model="mlp", steps=150, batch_size=64, width=64, blocks=1, lr=3e-3, lr_final=1e-3)
    save_lifter(path, train_lifter(config, [(sample_store(tmp_path_factory), 1.0)], progress=False))
    return path


def candidates(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    spread = torch.linspace(0.0, 1.2, n)[:, None, None]  # from the rest pose to wild poses
    return axis_angle_to_matrix(spread * torch.randn(n, 24, 3, generator=g)), torch.zeros(n, 10)


def selector(path, exponent, body):
    return HardnessSelector(path, exponent, body, load_camera_preset("h36m"))


def test_kept_candidates_are_harder_than_the_candidates(reference, body):
    rotmats, betas = candidates(2000)
    hard = selector(reference, 4.0, body)
    error = hard.errors(rotmats, betas, torch.Generator().manual_seed(1))
    keep = hard.select(rotmats, betas, 1000, torch.Generator().manual_seed(1))
    dropped = torch.ones(len(error), dtype=torch.bool)
    dropped[keep] = False
    assert error[keep].mean() > error[dropped].mean()


def test_a_larger_exponent_keeps_harder_poses(reference, body):
    rotmats, betas = candidates(2000)
    means = []
    for exponent in (0.0, 1.0, 8.0):
        hard = selector(reference, exponent, body)
        error = hard.errors(rotmats, betas, torch.Generator().manual_seed(2))
        means.append(float(error[hard.select(rotmats, betas, 1000, torch.Generator().manual_seed(2))].mean()))
    assert means[0] < means[1] < means[2]


def test_selection_keeps_distinct_candidates_in_order_and_is_deterministic(reference, body):
    rotmats, betas = candidates(600)
    hard = selector(reference, 2.0, body)
    a = hard.select(rotmats, betas, 300, torch.Generator().manual_seed(3))
    b = hard.select(rotmats, betas, 300, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and len(torch.unique(a)) == 300 and torch.equal(a, a.sort().values)


def test_a_hardness_store_is_made_of_kept_source_poses(reference, tmp_path_factory, tmp_path):
    train = training_store(tmp_path_factory)
    recipe = resolve_sample_recipe(overrides=SMALL + NO_AUGMENT + ['sample.keypoint_sets=["smpl24", "h36m17"]',
                                                                   "augment.hardness=2.0",
                                                                   f'augment.hardness_lifter="{reference}"'])
    out = sample_to_store(train, tmp_path / "hard.zarr", 256, seed=0, recipe=recipe, device="cpu").out
    again = sample_to_store(train, tmp_path / "again.zarr", 256, seed=0, recipe=recipe, device="cpu").out
    import zarr

    a, b = zarr.open_group(str(out), mode="r"), zarr.open_group(str(again), mode="r")
    assert np.array_equal(a["smpl/body_pose"][:], b["smpl/body_pose"][:])
    stored = zarr.open_group(str(train), mode="r")["body_pose"][:]
    nearest = np.abs(a["smpl/body_pose"][:][:, None] - stored[None]).max(-1).min(1)
    assert nearest.max() < 1e-4


def test_hardness_without_a_reference_lifter_is_refused():
    with pytest.raises(RecipeError, match="augment.hardness = 1.0 needs augment.hardness_lifter"):
        resolve_sample_recipe(overrides=["augment.hardness=1.0"])


def test_the_hardness_report_ranks_wild_poses_above_calm_ones(reference, body):
    from posesynth.evaluate import hardness_report

    g = torch.Generator().manual_seed(4)
    calm = axis_angle_to_matrix(0.05 * torch.randn(500, 24, 3, generator=g))
    wild = axis_angle_to_matrix(1.2 * torch.randn(500, 24, 3, generator=g))
    report = hardness_report(reference, {"calm": calm, "wild": wild}, body, seed=0)
    assert set(report["calm"]) == {"mean_mm", "median_mm", "p90_mm"}
    assert report["wild"]["mean_mm"] > report["calm"]["mean_mm"]
