"""Plots: the figures are real PNGs with something drawn, and the numbers behind them are right."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from posesynth import plots
from posesynth.cameras import CameraDistribution, sample_cameras
from posesynth.rotations import axis_angle_to_matrix
from posesynth.store import add_array, create_store, mark_complete
from test_render import make_sample_store


def assert_png(path, min_size=(300, 200)):
    img = np.asarray(Image.open(path).convert("RGB"))
    assert img.shape[1] >= min_size[0] and img.shape[0] >= min_size[1]
    assert (img.std(axis=(0, 1)) > 10).all()  # not a blank canvas
    assert (img.reshape(-1, 3) != 255).any(1).mean() > 0.02


@pytest.fixture(scope="module")
def store(tmp_path_factory, body, shape_basis):
    return make_sample_store(tmp_path_factory.mktemp("plots") / "samples.zarr", body, shape_basis, n=4, views=2,
                             distortion=True)


def test_joint_angles_agree_between_axis_angle_and_matrices():
    rng = np.random.default_rng(0)
    axis = rng.normal(size=(50, 24, 3))
    aa = torch.as_tensor(axis / np.linalg.norm(axis, axis=-1, keepdims=True) * rng.uniform(0, 3.1, (50, 24, 1)))
    from_aa = plots.joint_angles_deg(aa.reshape(50, 72).numpy())
    from_R = plots.joint_angles_deg(axis_angle_to_matrix(aa))
    np.testing.assert_allclose(from_aa, from_R, atol=1e-5)
    np.testing.assert_allclose(from_aa, np.degrees(aa.norm(dim=-1).numpy()), atol=1e-9)
    # A rotation by 1.5 pi about an axis is a rotation by 0.5 pi about the opposite one.
    assert plots.joint_angles_deg(np.array([[[0.0, 1.5 * np.pi, 0.0]]]))[0, 0] == pytest.approx(90.0)
    assert plots.joint_angles_deg({"body_pose": aa[:, 1:].reshape(50, 69)}).shape == (50, 23)
    with pytest.raises(ValueError, match="axis-angle"):
        plots.joint_angles_deg(np.zeros((5, 7)))


def test_joint_angle_plot(tmp_path):
    rng = np.random.default_rng(1)
    real = rng.normal(scale=0.3, size=(500, 69))
    gen = rng.normal(scale=0.4, size=(300, 69))
    assert_png(plots.plot_joint_angle_distributions(real, gen, tmp_path / "a" / "angles.png"), (1000, 500))
    with pytest.raises(ValueError, match="joints"):
        plots.plot_joint_angle_distributions(real, rng.normal(size=(10, 72)), tmp_path / "x.png")


def test_camera_parameters_recover_the_drawn_camera(tmp_path):
    n = 5
    dist = CameraDistribution(image_size=(640, 480), distance_m=4.0, fov_deg=60.0, azimuth_deg=30.0,
                              elevation_deg=20.0, roll_deg=10.0, allow_truncation=True)
    joints = torch.zeros(n, 24, 3, dtype=torch.float64)
    joints[..., 1] = 1.0  # every joint at the pelvis, 1 m above the floor: the camera looks at it
    cams = sample_cameras(dist, joints, torch.Generator().manual_seed(0))
    g = create_store(tmp_path / "c.zarr", "samples", {})
    for name in ("K", "R", "t", "distortion"):
        add_array(g, f"camera/{name}", getattr(cams, name).float().numpy())
    add_array(g, "camera/image_size", cams.image_size.numpy())
    add_array(g, "keypoints/smpl24/world", joints.float().numpy())
    add_array(g, "smpl/global_orient", np.zeros((n, 3), np.float32))
    mark_complete(g)
    p = plots.camera_parameters(g)
    for name, want in {"distance_m": 4.0, "fov_deg": 60.0, "azimuth_deg": 30.0, "elevation_deg": 20.0,
                       "height_m": 1.0 + 4.0 * np.sin(np.radians(20.0)), "cx_offset_px": 0.0, "k1": 0.0}.items():
        np.testing.assert_allclose(p[name], want, atol=1e-3, err_msg=name)
    np.testing.assert_allclose(np.abs(p["roll_deg"]), 10.0, atol=1e-3)


def test_store_plots_are_written(store, tmp_path):
    written = plots.write_store_plots(store, tmp_path / "all")  # plot_camera_histograms, plot_keypoint_density
    assert sorted(p.name for p in written) == ["cameras.png", "keypoints_smpl24.png"]
    for path in written:
        assert_png(path, (800, 400))
    with pytest.raises(ValueError, match="coco17"):
        plots.plot_keypoint_density(store, tmp_path / "x.png", "coco17")


def test_training_curves(tmp_path):
    log = tmp_path / "metrics.jsonl"
    with open(log, "w") as fh:
        for step in range(10, 2001, 10):
            fh.write(json.dumps({"step": step, "seconds": step / 7, "d_loss": 1.0 + np.sin(step / 100),
                                 "g_adv": 0.7}) + "\n")
            if step % 500 == 0:
                fh.write(json.dumps({"step": step, "eval": {"coverage_median_mm": 100.0 - step / 40}}) + "\n")
    series = plots.read_training_log(log)
    assert set(series) == {"d_loss", "g_adv", "eval/coverage_median_mm"}
    assert series["eval/coverage_median_mm"][0].tolist() == [500, 1000, 1500, 2000]
    assert_png(plots.plot_training_curves(log, tmp_path / "curves.png"), (800, 200))
    log.write_text('{"step": 1, "d_loss": 1}\nnot json\n')
    with pytest.raises(ValueError, match=":2: not JSON"):
        plots.read_training_log(log)
