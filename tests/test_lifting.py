"""posesynth.lifting: features, geometry, the MLP and cGAN lifters on tiny data, files and CLI."""

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from posesynth.cli import main
from posesynth.lifting.checkpoint import LifterConfig, LifterError, load_lifter, save_lifter
from posesynth.lifting.evaluate import evaluate_lifter, lift_errors
from posesynth.lifting.features import camera_coordinates, keypoint_set, lifter_features, root_weights
from posesynth.lifting.geometry import procrustes_align, reproject, solve_translation
from posesynth.lifting.predict import predict_file
from posesynth.lifting.train import parse_data_spec, train_lifter
from posesynth.rotations import axis_angle_to_matrix
from test_sampling import sample_store

DETECTIONS = Path(__file__).parent / "detections"
TINY = dict(steps=40, batch_size=64, width=64, blocks=1, lr=3e-3, lr_final=1e-3)
vectors = st.lists(st.floats(-3, 3), min_size=3, max_size=3)


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return sample_store(tmp_path_factory)


def pose(seed: int) -> torch.Tensor:
    """A random root-relative 17-point pose about 1.7 m tall, float64 (17, 3)."""
    return torch.randn(17, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 0.4


# ---------------------------------------------------------------------------- features and geometry
def test_camera_coordinates_undo_the_intrinsics():
    K = torch.tensor([[[1000.0, 0, 500], [0, 1100.0, 400], [0, 0, 1]]])
    points = torch.tensor([[[0.2, -0.1, 4.0], [0.0, 0.0, 5.0]]])
    pixels = (points @ K[0].T)[..., :2] / points[..., 2:]
    assert torch.allclose(camera_coordinates(pixels, K), points[..., :2] / points[..., 2:], atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(scale=st.floats(0.1, 10.0), seed=st.integers(0, 1000))
def test_features_ignore_the_size_of_the_person_in_the_image(scale, seed):
    root = root_weights(keypoint_set("h36m17"))
    coords = torch.randn(1, 17, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 0.1
    centre = coords[:, :1]
    scaled = centre + (coords - centre) * scale
    a, b = lifter_features(coords, root), lifter_features(scaled, root)
    assert torch.allclose(a, b, atol=1e-9)
    assert torch.allclose(a[:, -2:], centre[:, 0])  # the root's position is kept


def test_coco_root_is_the_hip_midpoint():
    w = root_weights(keypoint_set("coco17"))
    names = keypoint_set("coco17").joint_names
    assert w[names.index("left_hip")] == w[names.index("right_hip")] == 0.5 and w.sum() == 1.0


@settings(max_examples=40, deadline=None)
@given(axis_angle=vectors, scale=st.floats(0.5, 2.0), shift=vectors, seed=st.integers(0, 1000))
def test_procrustes_undoes_a_similarity_transform(axis_angle, scale, shift, seed):
    target = pose(seed)[None]
    R = axis_angle_to_matrix(torch.tensor(axis_angle, dtype=torch.float64))
    moved = scale * target @ R.T + torch.tensor(shift, dtype=torch.float64)
    assert torch.allclose(procrustes_align(moved, target), target, atol=1e-8)


def test_procrustes_does_not_reflect():
    target = pose(1)[None]
    mirrored = target * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    aligned = procrustes_align(mirrored, target)
    assert torch.linalg.det(torch.linalg.lstsq(mirrored[0] - mirrored[0].mean(0), aligned[0] - aligned[0].mean(0)).solution) > 0


@settings(max_examples=40, deadline=None)
@given(tx=st.floats(-1, 1), ty=st.floats(-1, 1), tz=st.floats(3, 8), seed=st.integers(0, 1000))
def test_translation_is_recovered_from_an_exact_projection(tx, ty, tz, seed):
    rel = pose(seed)[None] * 0.5
    t = torch.tensor([[tx, ty, tz]], dtype=torch.float64)
    placed = rel + t[:, None]
    coords = placed[..., :2] / placed[..., 2:]
    assert torch.allclose(solve_translation(rel, coords), t, atol=1e-8)
    assert torch.allclose(reproject(rel, coords), coords, atol=1e-9)


# ---------------------------------------------------------------------------- training, files, evaluation
def test_data_specs_take_an_optional_weight():
    assert parse_data_spec("a.zarr") == ("a.zarr", 1.0)
    assert parse_data_spec("runs/a.zarr:3") == ("runs/a.zarr", 3.0)
    with pytest.raises(ValueError, match="weight"):
        parse_data_spec("a.zarr:x")


def test_config_refuses_unknown_settings_and_models():
    with pytest.raises(LifterError, match="widht"):
        LifterConfig.with_overrides(LifterConfig(), {"widht": 3})
    with pytest.raises(LifterError, match="model"):
        LifterConfig(model="transformer")


def test_mlp_learns_and_round_trips_through_its_file(samples, tmp_path):
    config = LifterConfig(model="mlp", **TINY)
    untrained = train_lifter(LifterConfig(model="mlp", **{**TINY, "steps": 1, "lr": 1e-9}), [(samples, 1.0)],
                             progress=False)
    lifter = train_lifter(config, [(samples, 1.0)], progress=False)
    before = evaluate_lifter(untrained, samples)["overall"]["mpjpe_mm"]
    after = evaluate_lifter(lifter, samples)["overall"]
    assert after["mpjpe_mm"] < 0.7 * before
    assert after["n"] == 3000  # 1500 rows x 2 views
    save_lifter(tmp_path / "l.pt", lifter)
    again = load_lifter(tmp_path / "l.pt")
    f = torch.randn(5, 36)
    assert torch.equal(lifter.predict_features(f), again.predict_features(f))
    same_seed = train_lifter(config, [(samples, 1.0)], progress=False)
    assert torch.equal(lifter.predict_features(f), same_seed.predict_features(f))


def test_cgan_gives_several_bodies_that_reproject_onto_the_input(samples, tmp_path):
    config = LifterConfig(model="cgan", **{**TINY, "steps": 30}, hypotheses=3)
    lifter = train_lifter(config, [(samples, 1.0)], progress=False)
    errors = lift_errors(lifter, samples, hypotheses=4)
    assert set(errors) >= {"mpjpe_mm", "pa_mpjpe_mm", "best_of_k_mm", "mean_of_k_mm", "reprojection_px"}
    assert np.all(errors["best_of_k_mm"] <= errors["mpjpe_mm"] + 1e-6)  # z = 0 is one of the hypotheses
    assert np.all(errors["best_of_k_mm"] <= errors["mean_of_k_mm"] + 1e-6)
    features = torch.randn(6, 36)
    hyps = lifter.hypotheses(features, 4, torch.Generator().manual_seed(0))
    assert hyps.shape == (6, 4, 17, 3)
    assert torch.allclose(hyps[:, 0], lifter.predict_features(features), atol=1e-5)
    rotmats, betas = lifter.smpl(features)
    assert rotmats.shape == (6, 24, 3, 3) and betas.shape == (6, 10)
    assert torch.allclose(rotmats @ rotmats.transpose(-1, -2), torch.eye(3).expand(6, 24, 3, 3), atol=1e-5)
    save_lifter(tmp_path / "c.pt", lifter)
    assert torch.allclose(load_lifter(tmp_path / "c.pt").predict_features(features), hyps[:, 0], atol=1e-5)


def test_cgan_loss_goes_down(samples):
    short = train_lifter(LifterConfig(model="cgan", **{**TINY, "steps": 2}), [(samples, 1.0)], progress=False)
    longer = train_lifter(LifterConfig(model="cgan", **{**TINY, "steps": 40}), [(samples, 1.0)], progress=False)
    a, b = (lift_errors(x, samples, hypotheses=2)["mpjpe_mm"].mean() for x in (short, longer))
    assert b < 0.8 * a


# ---------------------------------------------------------------------------- predict
@pytest.fixture(scope="module")
def mlp_file(samples, tmp_path_factory):
    path = tmp_path_factory.mktemp("lift") / "mlp.pt"
    save_lifter(path, train_lifter(LifterConfig(model="mlp", **{**TINY, "steps": 5}), [(samples, 1.0)], progress=False))
    return path


def test_predict_reads_a_detector_file_with_confidences(mlp_file, tmp_path):
    out = tmp_path / "out.npz"
    assert predict_file(load_lifter(mlp_file), DETECTIONS / "h36m17.npz", out) == 8
    result = np.load(out)
    assert result["joints3d"].shape == (8, 17, 3) and np.isfinite(result["joints3d"]).all()
    assert np.allclose(result["joints3d"][:, 0], 0.0, atol=1e-6)  # root-relative
    assert list(result["joint_names"]) == list(keypoint_set("h36m17").joint_names)


def test_predict_takes_normalised_coordinates_as_the_same_input(mlp_file, tmp_path):
    d = np.load(DETECTIONS / "h36m17.npz")
    K = d["K"].astype(np.float64)
    normalised = (d["keypoints"][..., :2] - K[:2, 2]) / np.diag(K)[:2]
    np.savez(tmp_path / "n.npz", keypoints=normalised, layout="h36m17")
    lifter = load_lifter(mlp_file)
    predict_file(lifter, DETECTIONS / "h36m17.npz", tmp_path / "a.npz")
    predict_file(lifter, tmp_path / "n.npz", tmp_path / "b.npz", normalised=True)
    assert np.allclose(np.load(tmp_path / "a.npz")["joints3d"], np.load(tmp_path / "b.npz")["joints3d"], atol=1e-5)


def test_predict_errors_name_the_problem(mlp_file, tmp_path):
    lifter = load_lifter(mlp_file)
    np.savez(tmp_path / "noK.npz", keypoints=np.zeros((2, 17, 2)))
    with pytest.raises(LifterError, match="no intrinsics"):
        predict_file(lifter, tmp_path / "noK.npz", tmp_path / "o.npz")
    with pytest.raises(LifterError, match="missing"):  # a coco17 file for an h36m17 lifter
        predict_file(lifter, DETECTIONS / "coco17.npz", tmp_path / "o.npz")
    np.savez(tmp_path / "bad.npz", keypoints=np.zeros((2, 12, 2)), K=np.eye(3))
    with pytest.raises(LifterError, match="12 keypoints"):
        predict_file(lifter, tmp_path / "bad.npz", tmp_path / "o.npz")
    np.savez(tmp_path / "nan.npz", keypoints=np.full((2, 17, 2), np.nan), K=np.eye(3))
    with pytest.raises(LifterError, match="NaN"):
        predict_file(lifter, tmp_path / "nan.npz", tmp_path / "o.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(LifterError, match="not a readable .npz keypoint file"):
        predict_file(lifter, tmp_path / "text.npz", tmp_path / "o.npz")


def test_a_gan_checkpoint_is_not_a_lifter(tmp_path):
    from posesynth.gan.checkpoint import DEFAULT_CHECKPOINT

    with pytest.raises(LifterError, match="not a posesynth lifter"):
        load_lifter(DEFAULT_CHECKPOINT)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(LifterError, match="not a readable lifter"):
        load_lifter(tmp_path / "junk.pt")


# ---------------------------------------------------------------------------- CLI
def test_cli_train_eval_predict(samples, tmp_path):
    runner = CliRunner()
    out = tmp_path / "l.pt"
    r = runner.invoke(main, ["lift", "train", "--data", str(samples), "--data", f"{samples}:2", "--model", "mlp",
                             "--out", str(out), "--steps", "3", "--set", "width=32", "--keypoint-set", "coco17"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["lift", "eval", str(out), "--data", str(samples), "--json", str(tmp_path / "e.json")])
    assert r.exit_code == 0, r.output
    assert "| overall | 3000 |" in r.output and (tmp_path / "e.json").is_file()
    r = runner.invoke(main, ["lift", "predict", str(out), "--keypoints", str(DETECTIONS / "coco17.npz"),
                             "--out", str(tmp_path / "p.npz")])
    assert r.exit_code == 0, r.output
    assert np.load(tmp_path / "p.npz")["joints3d"].shape == (8, 17, 3)
    r = runner.invoke(main, ["lift", "train", "--data", str(samples), "--out", str(out), "--set", "widht=3"])
    assert r.exit_code != 0 and "unknown lifter setting" in r.output
    r = runner.invoke(main, ["lift", "predict", str(out), "--keypoints", str(DETECTIONS / "coco17.npz"),
                             "--hypotheses", "3"])
    assert r.exit_code != 0 and "cgan" in r.output
