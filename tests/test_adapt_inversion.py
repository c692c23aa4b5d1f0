"""The target lifted through the generator (``adapt.inversion``) and the latent bank an adapted
checkpoint draws from."""

import math
from dataclasses import replace

import pytest
import torch

from posesynth.adapt.inversion import invert, start_cameras
from posesynth.adapt.recipe import load_adapt_recipe
from posesynth.adapt.views import pose_bodies, view_coords
from posesynth.body_model import load_body_model
from posesynth.cameras import load_camera_preset
from posesynth.gan.checkpoint import CheckpointError, load_checkpoint, read_checkpoint_file, save_checkpoint
from posesynth.gan.latents import LatentBank
from posesynth.rotations import rot6d_to_matrix
from test_adapt import SHOULDER, TORSO, adapted, checkpoint, other_bodies, real_target, target_coords  # noqa: F401

SMALL = load_adapt_recipe(overrides=["invert.poses=200", "invert.start_steps=10", "invert.steps=40",
                                     "invert.bodies=false", "invert.turns=0", "invert.shared_turns=0"]).invert
# (the generator's poses alone: the tests that turn joints say so)


def lifted(checkpoint, settings, seed=0, target=None, elevation_deg=None, prior=None):
    source = load_checkpoint(checkpoint)
    target = target_coords(checkpoint, "surveillance") if target is None else target
    prior = source.betas_prior if prior is None else prior
    return invert(source, torch.as_tensor(target), "h36m17", prior, load_body_model(), settings, seed,
                  torch.device("cpu"), elevation_deg=elevation_deg)


def test_start_cameras_are_rotations_around_the_body():
    R = start_cameras(4).double()
    assert torch.allclose(R @ R.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand(4, 3, 3), atol=1e-6)
    assert torch.allclose(torch.linalg.det(R), torch.ones(4, dtype=torch.float64))
    assert torch.allclose(R[:, 1], torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64).expand(4, 3))  # level


def test_lifting_fits_the_targets_2d_far_better_than_its_starts(checkpoint):  # noqa: F811
    fitted = lifted(checkpoint, SMALL)
    unfitted = lifted(checkpoint, replace(SMALL, start_steps=0, steps=0))
    assert len(fitted.latents) == 200 and fitted.error.median() < 0.5 * unfitted.error.median()


def test_lifting_pulls_the_cameras_into_the_elevation_range_it_is_given(checkpoint):  # noqa: F811
    free = lifted(checkpoint, SMALL).elevation_deg  # the target's cameras: 20-50 degrees
    held = lifted(checkpoint, SMALL, elevation_deg=(60.0, 70.0)).elevation_deg  # a soft bound against the 2D
    assert ((free > 15.0) & (free < 55.0)).float().mean() > 0.95
    assert ((held > 55.0) & (held < 75.0)).float().mean() > 0.5


def test_lifting_is_deterministic_under_its_seed(checkpoint):  # noqa: F811
    a, b = lifted(checkpoint, SMALL, seed=3), lifted(checkpoint, SMALL, seed=3)
    assert torch.equal(a.latents, b.latents) and torch.equal(a.error, b.error)


def test_lifting_with_bodies_finds_the_targets_proportions(checkpoint):  # noqa: F811
    target = target_coords(checkpoint, "h36m", other_bodies(checkpoint))  # shoulders +2, torso -2
    fitted = lifted(checkpoint, replace(SMALL, bodies=True, steps=150), target=target)
    moved = fitted.betas - load_checkpoint(checkpoint).betas_prior.mean
    assert moved[SHOULDER] > 1.0 and moved[TORSO] < -1.0


def test_an_adapted_checkpoint_draws_around_its_latent_bank(adapted):  # noqa: F811
    source = load_checkpoint(adapted.out)
    assert len(source.latent_bank.latents) == 200 and source.latent_bank.jitter == 0.25
    assert read_checkpoint_file(adapted.out)["adapted"]["inversion"]["poses"] == 200
    exact = LatentBank(source.latent_bank.latents[:1], 0.0)
    source.latent_bank = exact
    poses = source.sample(3, torch.Generator().manual_seed(0)).rotmats
    labels = torch.full((1,), source.generator.num_labels)
    expected = rot6d_to_matrix(source.generator(exact.latents, labels))
    assert torch.allclose(poses, expected.expand(3, 24, 3, 3), atol=1e-5)


def bank_checkpoint(checkpoint, path, bank):  # noqa: F811
    """``checkpoint`` saved at ``path`` with the latent bank ``bank``."""
    payload, source = read_checkpoint_file(checkpoint), load_checkpoint(checkpoint)
    save_checkpoint(path, source.generator, payload["recipe"], source.label_field, source.label_names,
                    source.body_model, payload["step"], joint_limits=source.joint_limits, latent_bank=bank)
    return path


def test_the_checkpoint_format_says_what_its_bank_holds(adapted, checkpoint, tmp_path):  # noqa: F811
    assert read_checkpoint_file(adapted.out)["format_version"] == 3  # the default lifting turns joints
    plain = LatentBank(torch.zeros(4, 8), 0.1)
    assert read_checkpoint_file(bank_checkpoint(checkpoint, tmp_path / "plain.pt", plain))["format_version"] == 2
    assert read_checkpoint_file(checkpoint)["format_version"] == 1


def test_a_bank_with_turns_turns_the_joints_of_the_poses_it_draws(checkpoint, tmp_path):  # noqa: F811
    from posesynth.skeleton import JOINT_INDEX

    turns = torch.zeros(1, 23, 3)
    knee = JOINT_INDEX["left_knee"]
    turns[0, knee - 1, 0] = math.pi / 2  # the left knee bent a further 90 degrees about its x axis
    bank = LatentBank(torch.zeros(1, 8), 0.0)
    plain = load_checkpoint(bank_checkpoint(checkpoint, tmp_path / "plain.pt", bank))
    bent = load_checkpoint(bank_checkpoint(checkpoint, tmp_path / "bent.pt", replace(bank, turns=turns)))
    a, b = (s.sample(2, torch.Generator().manual_seed(0)).rotmats for s in (plain, bent))
    quarter = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    assert torch.allclose(b[:, knee], a[:, knee] @ quarter, atol=1e-5)
    others = [j for j in range(24) if j != knee]
    assert torch.equal(a[:, others], b[:, others])


def test_a_bank_turn_beyond_the_joint_limits_is_not_made(checkpoint, tmp_path):  # noqa: F811
    from posesynth.skeleton import JOINT_INDEX

    turns = torch.zeros(1, 23, 3)
    knee, elbow = JOINT_INDEX["left_knee"], JOINT_INDEX["left_elbow"]
    turns[0, knee - 1, 0] = -math.pi / 2  # the left knee bent 90 degrees the wrong way
    turns[0, elbow - 1, 1] = -0.1  # the left elbow flexed a little
    bank = LatentBank(torch.zeros(1, 8), 0.0)
    plain = load_checkpoint(bank_checkpoint(checkpoint, tmp_path / "plain.pt", bank))
    broken = load_checkpoint(bank_checkpoint(checkpoint, tmp_path / "broken.pt", replace(bank, turns=turns)))
    a, b = (s.sample(2, torch.Generator().manual_seed(0)).rotmats for s in (plain, broken))
    assert torch.equal(b[:, knee], a[:, knee])
    assert not torch.allclose(b[:, elbow], a[:, elbow], atol=1e-3)


def test_lifting_with_turns_fits_the_2d_closer_than_the_generator_alone(checkpoint):  # noqa: F811
    alone = lifted(checkpoint, replace(SMALL, turns=0.0))
    turned = lifted(checkpoint, replace(SMALL, turns=0.001))
    assert alone.turns is None and turned.turns.shape == (200, 23, 3)
    assert turned.error.median() < 0.8 * alone.error.median()


@pytest.mark.parametrize("bank, message", [  # the fixture GAN's latents have 8 dimensions
    ({"latents": torch.full((4, 8), float("nan")), "jitter": 0.1}, "latent_bank.latents must be finite latents"),
    ({"latents": torch.zeros(4, 7), "jitter": 0.1}, r"latent_bank.latents must be finite latents \(N, 8\)"),
    ({"latents": torch.zeros(4, 8), "jitter": -1.0}, "latent_bank.jitter must be a number >= 0"),
    ({"latents": torch.zeros(4, 8)}, "latent_bank.jitter must be a number >= 0"),
    ({"latents": torch.zeros(4, 8), "jitter": 0.1, "turns": torch.zeros(3, 23, 3)},
     r"latent_bank.turns must be finite axis-angle turns \(4, 23, 3\)"),
])
def test_a_damaged_latent_bank_is_named(checkpoint, tmp_path, bank, message):  # noqa: F811
    bank_checkpoint(checkpoint, tmp_path / "bad.pt", LatentBank(torch.zeros(4, 8), 0.1))
    damaged = torch.load(tmp_path / "bad.pt", weights_only=True)
    damaged["latent_bank"] = bank
    torch.save(damaged, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=f"bad.pt: {message}"):
        load_checkpoint(tmp_path / "bad.pt")


@pytest.mark.parametrize("size", ["average_adult", "checkpoint"])
def test_the_lifted_body_has_the_leg_length_its_size_setting_names(checkpoint, size):  # noqa: F811
    from posesynth.body_prior import BetasPrior
    from posesynth.body_range import STATURE_BETA, leg_length

    body = load_body_model()
    own = load_checkpoint(checkpoint).betas_prior
    tall = own.mean.clone()
    tall[STATURE_BETA] += 2.0  # the checkpoint's people a good deal taller than an average adult
    settings = replace(SMALL, bodies=True, steps=20, size=size)
    fitted = lifted(checkpoint, settings, prior=BetasPrior(tall, own.std, own.clip))
    average, people = leg_length(body.rest_joints(torch.stack([torch.zeros_like(tall), tall]).to(body.dtype)))
    assert people - average > 0.03
    legs = leg_length(body.rest_joints(fitted.betas[None].to(body.dtype)))[0]
    assert legs == pytest.approx(float(average if size == "average_adult" else people), abs=2e-3)


def test_an_unknown_size_setting_is_refused_naming_it():
    from posesynth.config import RecipeError

    with pytest.raises(RecipeError, match="invert.size must be one of average_adult, checkpoint"):
        load_adapt_recipe(overrides=['invert.size="giant"'])


def test_lifting_with_turns_gives_the_adapted_source_a_bank_with_them(checkpoint, real_target):  # noqa: F811
    from posesynth.adapt.run import lift_target
    from posesynth.adapt.target import read_target

    recipe = load_adapt_recipe(overrides=["invert.poses=50", "invert.start_steps=2", "invert.steps=3",
                                          "invert.turns=0.01"])
    lifted_source, inversion = lift_target(load_checkpoint(checkpoint), read_target(real_target, True), recipe, 0,
                                           load_body_model(), load_camera_preset("h36m"), torch.device("cpu"), False,
                                           None)
    assert lifted_source.latent_bank.turns.shape == (50, 23, 3)
    assert torch.equal(lifted_source.latent_bank.turns, inversion.turns)


def test_shared_turns_find_a_turn_every_target_pose_carries(checkpoint):  # noqa: F811
    from posesynth.gan.latents import turned  # (a name the turns test above uses for its lifting)
    from posesynth.skeleton import JOINT_INDEX

    neck = JOINT_INDEX["neck"] - 1  # body joints are numbered from the root's first child
    carried = torch.zeros(23, 3)
    carried[neck, 0] = math.radians(30.0)  # every target pose's neck bent 30 degrees further
    batch = load_checkpoint(checkpoint).sample(600, torch.Generator().manual_seed(1))
    with torch.no_grad():
        bodies = pose_bodies(turned(batch.rotmats, carried.expand(600, -1, -1)), batch.betas, load_body_model(),
                             "h36m17")
        target = view_coords(bodies, load_camera_preset("surveillance"), torch.Generator().manual_seed(2)).numpy()
    fitted = lifted(checkpoint, replace(SMALL, shared_turns=0.001, steps=150), target=target)
    angle = torch.rad2deg(fitted.shared_turns.norm(dim=-1))  # the head's joint takes part of it
    assert int(angle.argmax()) == neck and float(angle[neck]) > 10.0 and fitted.shared_turns[neck, 0] > 0
    assert torch.equal(fitted.turns, fitted.shared_turns.expand(200, -1, -1))


def test_turns_fitted_after_the_lifting_hold_its_cameras_and_fit_the_2d_closer(checkpoint):  # noqa: F811
    plain = lifted(checkpoint, SMALL)
    after = lifted(checkpoint, replace(SMALL, turns=0.001, turn_steps=40))
    assert torch.equal(after.cameras, plain.cameras)
    assert after.error.median() < 0.8 * plain.error.median()
