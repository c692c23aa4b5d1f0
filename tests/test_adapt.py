"""``posesynth adapt`` on a tiny fixture GAN: cameras fitted to a target of known cameras, the generator
fine-tuned towards a target of other poses, the adapted checkpoint."""

import hashlib

import numpy as np
import pytest
import torch

from posesynth.adapt.alignment import Alignment, AlignmentObjective, AlignmentSpace, fit_alignment
from posesynth.adapt.bodies import PROPORTION_BETAS
from posesynth.adapt.errors import AdaptError
from posesynth.adapt.finetune import FineTuner
from posesynth.adapt.recipe import load_adapt_recipe
from posesynth.adapt.run import adapt
from posesynth.adapt.search import SearchSizes
from posesynth.adapt.state import state_path
from posesynth.adapt.views import pose_bodies, view_coords
from posesynth.body_model import load_body_model
from posesynth.body_prior import BetasPrior
from posesynth.cameras import CameraDistribution, load_camera_preset
from posesynth.config import RecipeError
from posesynth.gan.checkpoint import load_checkpoint, read_checkpoint_file
from posesynth.outputs import OutputError
from posesynth.pose_source import StorePoseSource
from posesynth.gan.train import train
from test_gan import TINY
from test_sampling import training_store

SEARCH = SearchSizes(population=16, elites=4, iterations=5)
SHOULDER, TORSO = PROPORTION_BETAS[4], PROPORTION_BETAS[6]  # the shoulder-width and pelvis-to-neck betas


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A 2-step fixture GAN."""
    out = tmp_path_factory.mktemp("adapt_gan")
    return train(None, training_store(tmp_path_factory), out, TINY + ("train.steps=2",), progress=False)


def gan_bodies(checkpoint, n, seed, prior=None):
    """``n`` of the GAN's poses, on its own bodies or on bodies of ``prior``."""
    batch = load_checkpoint(checkpoint).sample(n, torch.Generator().manual_seed(seed))
    betas = batch.betas if prior is None else prior.sample(n, torch.Generator().manual_seed(seed + 100))
    return pose_bodies(batch.rotmats, betas, load_body_model(), "h36m17")


def target_coords(checkpoint, cameras, prior=None):
    """Normalised 2D (600, 17, 2) of the GAN's poses through ``cameras`` (on bodies of ``prior``)."""
    with torch.no_grad():
        return view_coords(gan_bodies(checkpoint, 600, 1, prior), load_camera_preset(cameras),
                           torch.Generator().manual_seed(2)).numpy()


def other_bodies(checkpoint):
    """The GAN's betas prior with shoulders 2 units wider and the torso 2 units shorter."""
    prior = load_checkpoint(checkpoint).betas_prior
    mean = prior.mean.clone()
    mean[SHOULDER] += 2.0
    mean[TORSO] -= 2.0
    return BetasPrior(mean, prior.std, prior.clip)


def fit(checkpoint, target, camera_ranges, bodies):
    source = load_checkpoint(checkpoint)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        rotmats = source.sample(600, generator).rotmats
    objective = AlignmentObjective(rotmats, torch.randn(600, 10, generator=generator), load_body_model(), "h36m17",
                                   target, seed=4)
    space = AlignmentSpace.make(Alignment(load_camera_preset("h36m"), source.betas_prior), camera_ranges, bodies,
                                load_body_model())
    return fit_alignment(objective, space, SEARCH, seed=0)


@pytest.fixture(scope="module")
def camera_fit(checkpoint):
    return fit(checkpoint, target_coords(checkpoint, "surveillance"), ["elevation_deg", "roll_deg"], False)


@pytest.fixture(scope="module")
def body_fit(checkpoint):
    return fit(checkpoint, target_coords(checkpoint, "h36m", other_bodies(checkpoint)), [], True)


def test_camera_alignment_moves_the_elevation_towards_the_targets(camera_fit):
    start = sum(load_camera_preset("h36m").elevation_deg) / 2  # 9 degrees; the target's middle is 35
    assert abs(sum(camera_fit.alignment.cameras.elevation_deg) / 2 - 35.0) < abs(start - 35.0) - 10.0


def test_camera_alignment_lowers_the_distance_to_the_target(camera_fit):
    assert camera_fit.after < 0.5 * camera_fit.before
    assert list(camera_fit.history) == sorted(camera_fit.history, reverse=True)


def test_camera_alignment_keeps_the_ranges_it_does_not_fit(camera_fit, checkpoint):
    start = load_camera_preset("h36m")
    fitted = camera_fit.alignment.cameras
    assert (fitted.distance_m, fitted.focal_px) == (start.distance_m, start.focal_px)
    assert camera_fit.alignment.betas_prior.to_dict() == load_checkpoint(checkpoint).betas_prior.to_dict()


def test_body_alignment_moves_the_proportions_towards_the_targets(body_fit, checkpoint):
    start, fitted = load_checkpoint(checkpoint).betas_prior.mean, body_fit.alignment.betas_prior.mean
    assert fitted[SHOULDER] - start[SHOULDER] > 1.0 and fitted[TORSO] - start[TORSO] < -1.0
    assert body_fit.alignment.cameras == load_camera_preset("h36m") and body_fit.after < 0.5 * body_fit.before


def test_alignment_is_deterministic_under_its_seed(checkpoint, body_fit):
    again = fit(checkpoint, target_coords(checkpoint, "h36m", other_bodies(checkpoint)), [], True)
    assert again == body_fit


def test_an_unknown_camera_range_is_refused():
    with pytest.raises(RecipeError, match="align.camera_ranges: 'azimuth_deg' is not one of elevation_deg"):
        load_adapt_recipe(overrides=['align.camera_ranges=["azimuth_deg"]'])


def test_a_focal_range_the_start_cameras_do_not_have_is_refused(checkpoint):
    with pytest.raises(AdaptError, match="the start cameras .align.start. have no fov_deg; they give focal_px"):
        AlignmentSpace.make(Alignment(load_camera_preset("h36m"), load_checkpoint(checkpoint).betas_prior),
                            ["fov_deg"], False, load_body_model())


# ---------------------------------------------------------------------------- fine-tuning, the checkpoint
SMALL_ADAPT = ["align.camera_ranges=[]", "align.bodies=false", "align.poses=300", "finetune.steps=200", "finetune.batch_size=64",
               "finetune.lr_g=1e-3", "finetune.state_every=50", "measure.poses=600", "invert.poses=200",
               "invert.start_steps=10", "invert.steps=30", "invert.turn_steps=10"]


@pytest.fixture(scope="module")
def real_target(tmp_path_factory):
    """The fixture clips' real poses through h36m cameras, as a normalised h36m17 target file."""
    store = training_store(tmp_path_factory)
    with torch.no_grad():
        batch = StorePoseSource(store, "all").sample(600, torch.Generator().manual_seed(5))
        bodies = pose_bodies(batch.rotmats, batch.betas, load_body_model(), "h36m17")
        coords = view_coords(bodies, load_camera_preset("h36m"), torch.Generator().manual_seed(6)).numpy()
    path = tmp_path_factory.mktemp("target") / "real.npz"
    np.savez(path, keypoints=coords, layout="h36m17")
    return path


@pytest.fixture(scope="module")
def adapted(checkpoint, real_target, tmp_path_factory):
    out = tmp_path_factory.mktemp("adapted") / "adapted.pt"
    return adapt(checkpoint, real_target, out, load_adapt_recipe(overrides=SMALL_ADAPT), seed=1, normalised=True)


def test_lifting_the_target_lowers_the_distance_to_a_target_of_other_poses(adapted):
    d = adapted.frechet_2d  # the cameras are not fitted (SMALL_ADAPT), so "aligned" is the lifting alone
    assert d["aligned"] < 0.9 * d["start"]


def test_fine_tuning_lowers_the_distance_further(adapted):
    d = adapted.frechet_2d
    assert d["adapted"] < 0.9 * d["aligned"]


def test_an_adapted_checkpoint_records_its_target_cameras_and_distances(adapted, real_target):
    record = read_checkpoint_file(adapted.out)["adapted"]
    assert record["target"]["files"][0]["sha256"] == hashlib.sha256(real_target.read_bytes()).hexdigest()
    assert record["target"]["poses"] == 600 and record["frechet_2d"] == adapted.frechet_2d
    assert CameraDistribution.from_dict(record["camera"]) == load_camera_preset("h36m")
    assert load_checkpoint(adapted.out).adapted == record


def test_adaptation_is_deterministic_under_its_seed(checkpoint, real_target, adapted, tmp_path):
    again = adapt(checkpoint, real_target, tmp_path / "again.pt", load_adapt_recipe(overrides=SMALL_ADAPT), seed=1,
                  normalised=True)
    a, b = read_checkpoint_file(adapted.out)["generator"], read_checkpoint_file(again.out)["generator"]
    assert all(torch.equal(a[k], b[k]) for k in a) and again.frechet_2d == adapted.frechet_2d


def test_adapt_refuses_to_overwrite_without_being_asked(checkpoint, real_target, adapted):
    with pytest.raises(OutputError, match="already exists; pass --overwrite"):
        adapt(checkpoint, real_target, adapted.out, load_adapt_recipe(overrides=SMALL_ADAPT), normalised=True)


def test_an_interrupted_adaptation_resumes_to_the_uninterrupted_weights(checkpoint, real_target, adapted, tmp_path,
                                                                        monkeypatch):
    recipe, out = load_adapt_recipe(overrides=SMALL_ADAPT), tmp_path / "resumed.pt"
    step = FineTuner.train_step

    def interrupted(tuner):
        if tuner.step == 120:
            raise KeyboardInterrupt
        return step(tuner)

    monkeypatch.setattr(FineTuner, "train_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        adapt(checkpoint, real_target, out, recipe, seed=1, normalised=True)
    monkeypatch.setattr(FineTuner, "train_step", step)
    assert state_path(out).is_file() and not out.exists()
    with pytest.raises(AdaptError, match="pass --resume to finish it"):
        adapt(checkpoint, real_target, out, recipe, seed=1, normalised=True)
    with pytest.raises(AdaptError, match="the state of another run"):
        adapt(checkpoint, real_target, out, recipe, seed=2, normalised=True, resume=True)
    adapt(checkpoint, real_target, out, recipe, seed=1, normalised=True, resume=True)
    a, b = read_checkpoint_file(adapted.out)["generator"], read_checkpoint_file(out)["generator"]
    assert all(torch.equal(a[k], b[k]) for k in a) and not state_path(out).exists()


def test_the_training_states_3d_discriminator_joins_the_fine_tuning(checkpoint, real_target, tmp_path):
    overrides = SMALL_ADAPT + ["finetune.steps=20"]
    result = adapt(checkpoint, real_target, tmp_path / "a.pt", load_adapt_recipe(overrides=overrides), seed=1,
                   normalised=True, training_state=checkpoint.parent / "state.pt")
    assert read_checkpoint_file(result.out)["adapted"]["training_state"] == str(checkpoint.parent / "state.pt")
    plain = adapt(checkpoint, real_target, tmp_path / "b.pt", load_adapt_recipe(overrides=overrides), seed=1,
                  normalised=True)
    assert result.frechet_2d["adapted"] != plain.frechet_2d["adapted"]


def test_another_checkpoints_training_state_is_refused(checkpoint, real_target, tmp_path, tmp_path_factory):
    other = train(None, training_store(tmp_path_factory), tmp_path / "other", TINY + ("train.steps=2", "train.seed=1"),
                  progress=False)
    with pytest.raises(AdaptError, match="state.pt: not the training state of .*checkpoint.pt"):
        adapt(checkpoint, real_target, tmp_path / "a.pt", load_adapt_recipe(overrides=SMALL_ADAPT), normalised=True,
              training_state=other.parent / "state.pt")


def test_a_coco17_target_adapts_through_the_same_pipeline(checkpoint, tmp_path):
    with torch.no_grad():
        batch = load_checkpoint(checkpoint).sample(300, torch.Generator().manual_seed(7))
        bodies = pose_bodies(batch.rotmats, batch.betas, load_body_model(), "coco17")
        coords = view_coords(bodies, load_camera_preset("in_the_wild"), torch.Generator().manual_seed(8)).numpy()
    np.savez(tmp_path / "coco.npz", keypoints=coords, layout="coco17")
    result = adapt(checkpoint, tmp_path / "coco.npz", tmp_path / "a.pt",
                   load_adapt_recipe(overrides=SMALL_ADAPT + ["finetune.steps=5"]), normalised=True)
    assert read_checkpoint_file(result.out)["adapted"]["target"]["layout"] == "coco17"


def test_a_focal_range_the_start_cameras_do_not_have_is_named_by_adapt(checkpoint, real_target, tmp_path):
    recipe = load_adapt_recipe(overrides=SMALL_ADAPT + ['align.camera_ranges=["fov_deg"]'])
    with pytest.raises(AdaptError, match=r"^align\.camera_ranges: the start cameras"):
        adapt(checkpoint, real_target, tmp_path / "a.pt", recipe, normalised=True)
    assert not (tmp_path / "a.pt").exists()
