"""The view and body statistics of ``posesynth adapt``: camera angles, the regressor's readings,
cameras fitted by view, bodies fitted by the body readings."""

import pytest
import torch

from posesynth.adapt.alignment import Alignment, AlignmentObjective, AlignmentSpace, ReadingObjective, fit_by_view
from posesynth.adapt.search import SearchSizes
from posesynth.adapt.viewpoint import READINGS, body_proportions, camera_angles, train_view_regressor
from posesynth.adapt.views import pose_bodies, seen
from posesynth.body_model import load_body_model
from posesynth.body_range import WideBodyRange
from posesynth.cameras import load_camera_preset, sample_cameras
from posesynth.gan.checkpoint import load_checkpoint
from test_adapt import SHOULDER, TORSO, checkpoint, gan_bodies, other_bodies, target_coords  # noqa: F401
from dataclasses import replace


def test_camera_angles_are_the_drawn_elevation_and_roll(checkpoint):  # noqa: F811
    dist = replace(load_camera_preset("h36m"), elevation_deg=(32.0, 32.0), roll_deg=(-7.0, -7.0))
    cams = sample_cameras(dist, gan_bodies(checkpoint, 50, 0).joints, torch.Generator().manual_seed(1))
    assert torch.allclose(camera_angles(cams), torch.tensor([32.0, -7.0], dtype=torch.float64), atol=1e-3)


@pytest.fixture(scope="module")
def poses(checkpoint):  # noqa: F811
    """600 of the fixture GAN's poses and body draws, as an alignment objective against a surveillance target."""
    source = load_checkpoint(checkpoint)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        rotmats = source.sample(600, generator).rotmats
    return AlignmentObjective(rotmats, torch.randn(600, 10, generator=generator), load_body_model(), "h36m17",
                              target_coords(checkpoint, "surveillance"), seed=4)


@pytest.fixture(scope="module")
def regressor(checkpoint, poses):  # noqa: F811
    return train_view_regressor(poses.rotmats, load_body_model(), "h36m17", load_camera_preset("h36m"), steps=300,
                                seed=0)


def test_the_view_regressor_reads_the_elevation_of_unseen_cameras(regressor, checkpoint):  # noqa: F811
    with torch.no_grad():
        coords, cams, _ = seen(gan_bodies(checkpoint, 400, 9), load_camera_preset("surveillance"),
                            torch.Generator().manual_seed(10))
    error = (regressor.read(coords)[:, :2] - camera_angles(cams)).abs().median(0).values
    assert error[0] < 8.0 and error[1] < 8.0  # degrees; the surveillance cameras look down 20-50


def test_cameras_fitted_by_view_find_the_targets_elevation(checkpoint, poses, regressor):  # noqa: F811
    start = Alignment(load_camera_preset("h36m"), load_checkpoint(checkpoint).betas_prior)
    space = AlignmentSpace.make(start, ["elevation_deg", "roll_deg"], False, load_body_model())
    view = ReadingObjective(poses, regressor, target_coords(checkpoint, "surveillance"))
    fitted = fit_by_view(view, poses, space, SearchSizes(16, 4, 5), seed=0).alignment.cameras
    lo, hi = fitted.elevation_deg  # the target's: 20-50
    assert abs((lo + hi) / 2 - 35.0) < 6.0 and hi - lo > 15.0 and max(map(abs, fitted.roll_deg)) < 8.0


def test_the_regressor_reads_wider_shoulders_on_wider_bodies(regressor, checkpoint):  # noqa: F811
    wide = WideBodyRange.for_body(load_body_model())
    narrow, broad = (wide.sample(400, torch.Generator().manual_seed(11)) for _ in range(2))
    broad[:, SHOULDER] += 2.0
    column = READINGS.index("shoulder_width_pct")
    read = {}
    for name, betas in (("narrow", narrow), ("broad", broad)):
        rotmats = load_checkpoint(checkpoint).sample(400, torch.Generator().manual_seed(12)).rotmats
        with torch.no_grad():
            coords, _, _ = seen(pose_bodies(rotmats, betas, load_body_model(), "h36m17"), load_camera_preset("h36m"),
                             torch.Generator().manual_seed(13))
        read[name] = regressor.read(coords)[:, column].mean()
    truth = (body_proportions(broad, wide) - body_proportions(narrow, wide))[:, 4].mean()  # percent
    assert abs(read["broad"] - read["narrow"] - truth) < 0.5 * truth


def test_bodies_fitted_by_readings_find_the_targets_proportions(checkpoint, poses, regressor):  # noqa: F811
    source = load_checkpoint(checkpoint)
    start = Alignment(load_camera_preset("h36m"), source.betas_prior)
    space = AlignmentSpace.make(start, [], True, load_body_model())
    readings = ReadingObjective(poses, regressor, target_coords(checkpoint, "h36m", other_bodies(checkpoint)))
    fitted = fit_by_view(readings, poses, space, SearchSizes(16, 4, 5), seed=0).alignment.betas_prior.mean
    moved = fitted - source.betas_prior.mean  # the target's: shoulders +2, torso -2
    assert moved[SHOULDER] > 1.0 and moved[TORSO] < -1.0
