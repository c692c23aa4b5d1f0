"""``posesynth adapt`` on a tiny fixture GAN: cameras fitted to a target of known cameras."""

import pytest
import torch

from posesynth.adapt.cameras import CameraSearch, camera_objective, fit_cameras
from posesynth.adapt.views import pose_bodies, view_coords
from posesynth.body_model import load_body_model
from posesynth.cameras import load_camera_preset
from posesynth.gan.checkpoint import load_checkpoint
from posesynth.gan.train import train
from test_gan import TINY
from test_sampling import training_store

SEARCH = CameraSearch(population=8, elites=3, iterations=3)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A 2-step fixture GAN."""
    out = tmp_path_factory.mktemp("adapt_gan")
    return train(None, training_store(tmp_path_factory), out, TINY + ("train.steps=2",), progress=False)


def gan_bodies(checkpoint, n, seed):
    batch = load_checkpoint(checkpoint).sample(n, torch.Generator().manual_seed(seed))
    return pose_bodies(batch.rotmats, batch.betas, load_body_model(), "h36m17")


@pytest.fixture(scope="module")
def surveillance_target(checkpoint):
    """Normalised 2D (600, 17, 2) of the GAN's poses through surveillance cameras (20-50 degrees)."""
    with torch.no_grad():
        return view_coords(gan_bodies(checkpoint, 600, 1), load_camera_preset("surveillance"),
                           torch.Generator().manual_seed(2)).numpy()


@pytest.fixture(scope="module")
def fitted(checkpoint, surveillance_target):
    with torch.no_grad():
        objective = camera_objective(gan_bodies(checkpoint, 600, 3), surveillance_target, "h36m17", seed=4)
    return fit_cameras(objective, load_camera_preset("h36m"), SEARCH, seed=0)


def test_camera_adaptation_moves_the_elevation_towards_the_targets(fitted):
    start = sum(load_camera_preset("h36m").elevation_deg) / 2  # 9 degrees; the target's middle is 35
    assert abs(sum(fitted.distribution.elevation_deg) / 2 - 35.0) < abs(start - 35.0) - 10.0


def test_camera_adaptation_lowers_the_distance_to_the_target(fitted):
    assert fitted.after < 0.5 * fitted.before and list(fitted.history) == sorted(fitted.history, reverse=True)


def test_camera_adaptation_is_deterministic_under_its_seed(checkpoint, surveillance_target, fitted):
    with torch.no_grad():
        objective = camera_objective(gan_bodies(checkpoint, 600, 3), surveillance_target, "h36m17", seed=4)
    assert fit_cameras(objective, load_camera_preset("h36m"), SEARCH, seed=0) == fitted
