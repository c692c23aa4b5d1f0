"""The cycle's depth regressor (posesynth.adapt.cycle) and the second lifting it anchors."""

from __future__ import annotations

from dataclasses import replace

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from posesynth.adapt.cycle import DepthRegressor, orthographic_depth, relative_depth, train_depth_regressor
from posesynth.adapt.inversion import invert
from posesynth.adapt.recipe import load_adapt_recipe
from posesynth.adapt.views import pose_bodies, seen
from posesynth.body_model import load_body_model
from posesynth.cameras import load_camera_preset
from posesynth.gan.checkpoint import load_checkpoint
from posesynth.rotations import axis_angle_to_matrix, rot6d_to_matrix
from test_adapt import checkpoint, gan_bodies, real_target  # noqa: F401

SMALL = load_adapt_recipe(overrides=["invert.poses=200", "invert.start_steps=10", "invert.steps=40",
                                     "invert.bodies=false", "invert.cycle=1.0"]).invert


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(20.0, 200.0))
def test_a_distant_cameras_relative_depth_is_the_orthographic_one(seed, distance):
    g = torch.Generator().manual_seed(seed)
    pose = torch.randn(1, 17, 3, generator=g, dtype=torch.float64) * 0.3  # root-relative, metres
    pose = pose - pose[:, :1]
    R = axis_angle_to_matrix(torch.randn(1, 3, generator=g, dtype=torch.float64))
    rotated = pose @ R.transpose(-1, -2)
    in_camera = rotated + torch.tensor([0.0, 0.0, distance], dtype=torch.float64)
    # the perspective error of the depth units shrinks as the pose's size over the distance
    orthographic = orthographic_depth(rotated, "h36m17")
    tolerance = 4.0 * float(pose.norm(dim=-1).max()) / distance * float(orthographic.abs().max() + 1)
    assert torch.allclose(relative_depth(in_camera, "h36m17"), orthographic, atol=tolerance)


def test_depth_units_do_not_depend_on_the_persons_size():
    pose = torch.randn(1, 17, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.3
    assert torch.allclose(orthographic_depth(pose, "h36m17"), orthographic_depth(2.5 * pose, "h36m17"))


def _views(checkpoint, n, seed):  # noqa: F811
    """Normalised 2D (n, 17, 2) of the GAN's poses through surveillance cameras and their depths (n, 17)."""
    with torch.no_grad():
        coords, _, points = seen(gan_bodies(checkpoint, n, seed), load_camera_preset("surveillance"),
                                 torch.Generator().manual_seed(seed + 1))
    return coords, relative_depth(points, "h36m17").float()


def test_the_depth_regressor_reads_depth_from_2d_far_better_than_no_depth(checkpoint):  # noqa: F811
    regressor = train_depth_regressor(load_checkpoint(checkpoint), load_body_model(), "h36m17",
                                      load_camera_preset("surveillance"), 300, 0, torch.device("cpu"))
    coords, depth = _views(checkpoint, 400, 50)  # poses and views it was not trained on
    assert (regressor.read(coords) - depth).pow(2).mean() < 0.3 * depth.pow(2).mean()


def test_the_depth_regressor_is_deterministic_under_its_seed(checkpoint):  # noqa: F811
    a, b = (train_depth_regressor(load_checkpoint(checkpoint), load_body_model(), "h36m17",
                                  load_camera_preset("h36m"), 5, 7, torch.device("cpu")) for _ in range(2))
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


class KnownDepths(DepthRegressor):
    """A regressor that reads every target pose's true depths (the rows ``invert`` picks)."""

    def __init__(self, coords: torch.Tensor, depth: torch.Tensor) -> None:
        super().__init__("h36m17")
        self.coords, self.depth = coords, depth

    def read(self, coords: torch.Tensor, batch: int = 8192) -> torch.Tensor:
        match = (coords[:, None] - self.coords[None]).abs().flatten(2).amax(-1).argmin(1)
        return self.depth[match]


def _lifted_depths(source, inversion):
    """(N, J) the lifted poses' depths as their fitted cameras see them."""
    labels = torch.full((len(inversion.latents),), source.generator.num_labels, dtype=torch.int64)
    with torch.no_grad():
        rotmats = rot6d_to_matrix(source.generator(inversion.latents, labels))
        bodies = pose_bodies(rotmats, source.betas_prior.mean.expand(len(rotmats), -1), load_body_model(), "h36m17")
        return orthographic_depth((bodies.keypoints - bodies.joints[:, :1]) @ inversion.cameras.transpose(-1, -2),
                                  "h36m17")


def test_lifting_towards_known_depths_recovers_them_better_than_the_2d_alone(checkpoint):  # noqa: F811
    coords, depth = _views(checkpoint, 200, 60)
    source = load_checkpoint(checkpoint)
    args = (source, coords, "h36m17", source.betas_prior, load_body_model())
    alone = invert(*args, replace(SMALL, cycle=0.0), 0, torch.device("cpu"))
    anchored = invert(*args, SMALL, 0, torch.device("cpu"), regressor=KnownDepths(coords, depth))
    truth = depth[torch.randperm(200, generator=torch.Generator().manual_seed(0))]  # invert's pick under seed 0
    error = {name: (_lifted_depths(source, fit) - truth).pow(2).mean() for name, fit in
             (("alone", alone), ("anchored", anchored))}
    assert error["anchored"] < 0.5 * error["alone"]


def test_lifting_with_the_cycle_banks_the_second_liftings_latents(checkpoint, real_target):  # noqa: F811
    from posesynth.adapt.run import lift_target
    from posesynth.adapt.target import read_target

    def lift(*overrides):
        recipe = load_adapt_recipe(overrides=["invert.poses=50", "invert.start_steps=2", "invert.steps=3",
                                              "invert.cycle_steps=3", *overrides])
        return lift_target(load_checkpoint(checkpoint), read_target(real_target, True), recipe, 0, load_body_model(),
                           load_camera_preset("h36m"), torch.device("cpu"), False, None)

    (_, first), (twice, second) = lift(), lift("invert.cycle=1.0")
    assert torch.equal(twice.latent_bank.latents, second.latents)
    assert not torch.allclose(second.latents, first.latents)
