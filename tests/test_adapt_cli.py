"""``posesynth adapt`` on the command line, and an adapted checkpoint everywhere a checkpoint goes."""

import numpy as np
import pytest
import torch
import zarr
from click.testing import CliRunner

from posesynth.adapt.views import view_coords
from posesynth.augment import POOL_AUGMENTATIONS
from posesynth.cameras import load_camera_preset
from posesynth.cli import main
from posesynth.gan.checkpoint import read_checkpoint_file
from test_adapt import checkpoint, gan_bodies  # noqa: F401  (a module fixture)
from test_sampling import SMALL, training_store

QUICK = ["align.poses=300", "align.population=4", "align.elites=2", "align.iterations=2", "align.view_steps=20",
         "finetune.steps=4", "finetune.batch_size=32", "measure.poses=300", "invert.start_steps=5", "invert.steps=10"]
SAMPLE = [x for s in SMALL for x in ("--set", s)]


def invoke(*args):
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res


@pytest.fixture(scope="module")
def adapted(checkpoint, tmp_path_factory):  # noqa: F811
    """An adapted checkpoint, fitted to the GAN's poses through surveillance cameras."""
    folder = tmp_path_factory.mktemp("adapt_cli")
    with torch.no_grad():
        coords = view_coords(gan_bodies(checkpoint, 400, 1), load_camera_preset("surveillance"),
                             torch.Generator().manual_seed(2)).numpy()
    np.savez(folder / "target.npz", keypoints=coords, layout="h36m17")
    out = folder / "adapted.pt"
    res = invoke("adapt", "--checkpoint", checkpoint, "--target-2d", folder / "target.npz", "--normalised",
                 "--out", out, "--device", "cpu", *[x for s in QUICK for x in ("--set", s)])
    assert "2D Fréchet distance to the target (400 poses)" in res.output and f"wrote {out}" in res.output
    return out


def store_camera(path):
    return zarr.open_group(str(path), mode="r").attrs["recipe"]["camera"]


def test_adapt_refuses_an_existing_output_without_overwrite(checkpoint, adapted):  # noqa: F811
    res = CliRunner().invoke(main, ["adapt", "--checkpoint", str(checkpoint), "--target-2d",
                                    str(adapted.parent / "target.npz"), "--normalised", "--out", str(adapted)])
    assert res.exit_code == 1 and "already exists; pass --overwrite" in res.output


def test_sample_draws_an_adapted_checkpoints_cameras(adapted, tmp_path):
    invoke("sample", "--checkpoint", adapted, "--n", 256, "--out", tmp_path / "s.zarr", "--device", "cpu", *SAMPLE)
    camera, fitted = store_camera(tmp_path / "s.zarr"), read_checkpoint_file(adapted)["adapted"]["camera"]
    assert camera["preset"] == "adapted" and camera["elevation_deg"] == fitted["elevation_deg"]


def test_a_named_camera_preset_replaces_the_adapted_cameras(adapted, tmp_path):
    invoke("sample", "--checkpoint", adapted, "--n", 256, "--out", tmp_path / "s.zarr", "--device", "cpu", *SAMPLE,
           "--set", "camera.preset=h36m")
    camera = store_camera(tmp_path / "s.zarr")
    assert camera["preset"] == "h36m" and camera["elevation_deg"] == [3.0, 15.0]


def test_an_adapted_checkpoint_samples_without_the_pools_augmentations(adapted, tmp_path):
    invoke("sample", "--checkpoint", adapted, "--n", 256, "--out", tmp_path / "s.zarr", "--device", "cpu", *SAMPLE)
    augment = zarr.open_group(str(tmp_path / "s.zarr"), mode="r").attrs["recipe"]["augment"]
    assert [augment[name] for name in POOL_AUGMENTATIONS] == [0.0] * len(POOL_AUGMENTATIONS)


def test_an_adapted_checkpoint_from_before_mirror_samples_without_it(adapted, tmp_path):
    payload = read_checkpoint_file(adapted)
    del payload["adapted"]["augment"]["mirror"]  # as a checkpoint adapted before mirror existed
    torch.save(payload, tmp_path / "old.pt")
    invoke("sample", "--checkpoint", tmp_path / "old.pt", "--n", 256, "--out", tmp_path / "s.zarr", "--device", "cpu",
           *SAMPLE)
    assert zarr.open_group(str(tmp_path / "s.zarr"), mode="r").attrs["recipe"]["augment"]["mirror"] == 0.0


def test_a_set_turns_an_adapted_checkpoints_augmentation_back_on(adapted, tmp_path):
    invoke("sample", "--checkpoint", adapted, "--n", 256, "--out", tmp_path / "s.zarr", "--device", "cpu", *SAMPLE,
           "--set", "augment.tilt=0.2")
    augment = zarr.open_group(str(tmp_path / "s.zarr"), mode="r").attrs["recipe"]["augment"]
    assert (augment["tilt"], augment["wide_bodies"]) == (0.2, 0.0)


def test_an_adapted_checkpoints_store_exports(adapted, tmp_path):
    invoke("sample", "--checkpoint", adapted, "--n", 256, "--out", tmp_path / "s.zarr", "--device", "cpu", *SAMPLE)
    invoke("export", tmp_path / "s.zarr", "--format", "npz", "--out", tmp_path / "s.npz")
    assert np.load(tmp_path / "s.npz")["keypoints/h36m17/pixels"].shape[0] == 256


def test_evaluate_judges_an_adapted_checkpoint(adapted, tmp_path_factory):
    res = invoke("evaluate", "--checkpoint", adapted, "--data", training_store(tmp_path_factory), "--n", 300,
                 "--no-conditional")
    assert "coverage" in res.output


def test_render_draws_an_adapted_checkpoint(adapted, tmp_path):
    pytest.importorskip("PIL")
    recipe = tmp_path / "small.toml"
    recipe.write_text("[sample]\nblock_size = 64\nchunk_size = 64\nshard_size = 64\n")
    invoke("render", "--checkpoint", adapted, "--recipe", recipe, "--n", 2, "--size", 64, "--out", tmp_path / "a.png",
           "--renderer", "matplotlib")
    assert (tmp_path / "a.png").is_file()


def test_adapt_refuses_to_write_over_its_checkpoint(checkpoint, adapted):  # noqa: F811
    res = CliRunner().invoke(main, ["adapt", "--checkpoint", str(adapted), "--target-2d",
                                    str(adapted.parent / "target.npz"), "--normalised", "--out", str(adapted),
                                    "--overwrite"])
    assert res.exit_code == 1 and "are the same path" in res.output and adapted.is_file()
