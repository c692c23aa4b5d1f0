"""`posesynth sample`: the sample store's schema, determinism, resume after SIGKILL, safety,
label conditioning, the replayed-store pose source, and dask."""

import errno
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr
from click.testing import CliRunner

import posesynth
from conftest import FIXTURES
from posesynth.augment import pool_augmentations_off
from posesynth.cameras import project
from posesynth.cli import main
from posesynth.config import RecipeError
from posesynth.gan.checkpoint import DEFAULT_CHECKPOINT, read_checkpoint_file
from posesynth.kinematics import forward_kinematics, yaw_angle
from posesynth.pose_source import PoseSourceError, StorePoseSource
from posesynth.pose_sources import load_pose_source
from posesynth.prepare import PrepareOptions, prepare
from posesynth.resources import recipe_path
from posesynth.rotations import axis_angle_to_matrix
from posesynth.sample_recipe import resolve_sample_recipe
from posesynth.sampling import SampleError, sample_to_store
from posesynth.sampling.generate import sole_clearance
from posesynth.store import StoreError, open_store

SMALL = ["sample.block_size=128", "sample.chunk_size=256", "sample.shard_size=512"]
NO_AUGMENT = pool_augmentations_off()


# ---------------------------------------------------------------------------- shared stores
def training_store(tmp_path_factory) -> Path:
    """The committed clips prepared once per test session (shared by the sample-store tests)."""
    path = tmp_path_factory.getbasetemp() / "shared" / "train.zarr"
    if not (path / "zarr.json").is_file() or not open_store(path, allow_incomplete=True).attrs["posesynth"]["complete"]:
        prepare([FIXTURES], path, PrepareOptions(workers=1, val_fraction=0.0, val_subjects=("HDM_bd",)),
                overwrite=True, progress=False)
    return path


def sample_store(tmp_path_factory, n: int = 1500, views: int = 2) -> Path:
    """A small sample store with every keypoint set, two views and noisy 2D, made once per session."""
    path = tmp_path_factory.getbasetemp() / "shared" / f"samples_{n}_{views}.zarr"
    if not path.exists():
        recipe = resolve_sample_recipe(overrides=SMALL + [f"camera.views={views}"])
        sample_to_store(training_store(tmp_path_factory), path, n, seed=3, recipe=recipe, device="cpu")
    return path


def read_all(path) -> dict[str, np.ndarray]:
    group = zarr.open_group(str(path), mode="r")
    return {name: a[...] for name, a in group.members(max_depth=None) if isinstance(a, zarr.Array)}


def assert_same_arrays(a, b) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name]), name


@pytest.fixture(scope="module")
def train(tmp_path_factory):
    return training_store(tmp_path_factory)


@pytest.fixture(scope="module")
def light():
    """A cheap recipe: smpl24 only, small blocks."""
    return resolve_sample_recipe(overrides=SMALL + ['sample.keypoint_sets=["smpl24"]'])


# ---------------------------------------------------------------------------- schema
def test_store_schema_and_attributes(tmp_path_factory, train):
    path = sample_store(tmp_path_factory)
    group = open_store(path, kind="samples")
    n, V = 1500, 2
    sets = {"smpl24": 24, "h36m17": 17, "coco17": 17}
    expected = {"smpl/global_orient": (3,), "smpl/body_pose": (69,), "smpl/betas": (10,), "smpl/transl": (3,),
                "label": (), "camera/K": (V, 3, 3), "camera/R": (V, 3, 3), "camera/t": (V, 3),
                "camera/distortion": (V, 4), "camera/image_size": (V, 2)}
    for s, J in sets.items():
        expected.update({f"keypoints/{s}/world": (J, 3), f"keypoints/{s}/camera": (V, J, 3),
                         f"keypoints/{s}/pixels": (V, J, 2), f"keypoints/{s}/pixels_noisy": (V, J, 2),
                         f"keypoints/{s}/visible": (V, J)})
    arrays = read_all(path)
    assert {k: v.shape[1:] for k, v in arrays.items()} == expected
    assert all(v.shape[0] == n for v in arrays.values())
    for name, a in arrays.items():
        want = np.uint8 if name.endswith("visible") else np.int32 if name in ("label", "camera/image_size") else np.float32
        assert a.dtype == want, name
        assert group[name].chunks[0] == 256 and group[name].shards[0] == 512
    attrs = group.attrs
    assert attrs["posesynth"] == {"schema_version": 1, "version": posesynth.__version__, "kind": "samples",
                                  "complete": True, "num_samples": n}
    assert attrs["seed"] == 3 and attrs["block_size"] == 128 and attrs["shards_done"] == [0, 1, 2]
    assert attrs["recipe"] == resolve_sample_recipe(overrides=SMALL + ["camera.views=2"]).to_dict()
    assert attrs["source"]["identity"] == StorePoseSource(train).identity
    assert attrs["labels"] == ["dash", "kickLFront1Reps", "raise-up-left-hand"]
    assert attrs["keypoint_sets"]["h36m17"]["joint_names"][:2] == ["pelvis", "right_hip"]
    assert attrs["keypoint_sets"]["coco17"]["parents"] is None and attrs["keypoint_sets"]["coco17"]["edges"]
    assert attrs["skeleton"]["parents"][:4] == [-1, 0, 0, 0]
    assert "x_cam = R @ x_world + t" in attrs["camera_convention"]
    assert attrs["body_model"].startswith("posesynth_neutral.npz:")


def test_samples_are_consistent_bodies_seen_by_their_cameras(tmp_path_factory, body):
    a = read_all(sample_store(tmp_path_factory))
    pose = np.concatenate([a["smpl/global_orient"], a["smpl/body_pose"]], 1).reshape(-1, 24, 3)
    rest = body.rest_joints(torch.as_tensor(a["smpl/betas"]))
    _, joints = forward_kinematics(axis_angle_to_matrix(torch.as_tensor(pose)), rest)
    joints = joints + torch.as_tensor(a["smpl/transl"])[:, None]
    world = a["keypoints/smpl24/world"]
    np.testing.assert_allclose(joints.numpy(), world, atol=1e-4)
    # Standing on the floor over the origin, facing +z before the camera turns around it.
    np.testing.assert_allclose(world[:, 0, [0, 2]], 0, atol=1e-5)
    np.testing.assert_allclose(world[:, :, 1].min(1), sole_clearance(body), atol=1e-5)
    # Untilted bodies keep the source's yaw-free orientation (augment.tilt turns its share of them).
    yaw = yaw_angle(axis_angle_to_matrix(torch.as_tensor(a["smpl/global_orient"])))
    assert (yaw.abs() < 1e-3).float().mean() >= 1 - resolve_sample_recipe().augment.tilt - 0.05
    # Camera frame and pixels are the cameras' view of the world keypoints.
    R, t = a["camera/R"], a["camera/t"]
    cam = np.einsum("nvij,nkj->nvki", R, world) + t[:, :, None]
    np.testing.assert_allclose(cam, a["keypoints/smpl24/camera"], atol=1e-4)
    from posesynth.cameras import Cameras

    cams = Cameras(*(torch.as_tensor(a[f"camera/{k}"]) for k in ("K", "R", "t", "distortion", "image_size")))
    pixels, _ = project(torch.as_tensor(world), cams)
    np.testing.assert_allclose(pixels.numpy(), a["keypoints/smpl24/pixels"], atol=1e-3)
    visible = a["keypoints/smpl24/visible"]
    assert set(np.unique(visible)) <= {0, 1, 2, 3} and (visible & 1).all()  # h36m cameras keep the body in frame
    assert 0.5 < (visible == 3).mean() < 1.0
    noise = a["keypoints/smpl24/pixels_noisy"] - a["keypoints/smpl24/pixels"]
    assert 0 < np.median(np.abs(noise)) < 20
    assert (a["camera/image_size"] == [1000, 1000]).all()


# ---------------------------------------------------------------------------- determinism
def test_identical_whatever_the_layout_workers_and_format(tmp_path, train, light):
    base = sample_to_store(train, tmp_path / "a.zarr", 1000, seed=7, recipe=light, device="cpu", workers=1).out
    other = resolve_sample_recipe(overrides=["sample.block_size=128", "sample.chunk_size=128", "sample.shard_size=1024",
                                             'sample.keypoint_sets=["smpl24"]'])
    b = sample_to_store(train, tmp_path / "b.zarr", 1000, seed=7, recipe=other, device="cpu", workers=2).out
    c = sample_to_store(train, tmp_path / "c.zarr", 1000, seed=7, recipe=light, device="cpu", workers=2,
                        zarr_format=2).out
    ref = read_all(base)
    assert_same_arrays(ref, read_all(b))
    assert_same_arrays(ref, read_all(c))
    assert zarr.open_group(str(c)).metadata.zarr_format == 2
    # A shorter run is a prefix of a longer one; another seed gives other samples.
    short = read_all(sample_to_store(train, tmp_path / "d.zarr", 300, seed=7, recipe=light, device="cpu").out)
    assert all(np.array_equal(short[k], ref[k][:300]) for k in ref)
    other_seed = read_all(sample_to_store(train, tmp_path / "e.zarr", 300, seed=8, recipe=light, device="cpu").out)
    assert not np.array_equal(other_seed["smpl/body_pose"], short["smpl/body_pose"])


def test_dask_local_cluster_writes_the_same_store(tmp_path, train, light):
    pytest.importorskip("distributed")
    ref = sample_to_store(train, tmp_path / "ref.zarr", 1200, seed=2, recipe=light, device="cpu").out
    out = sample_to_store(str(train), tmp_path / "dask.zarr", 1200, seed=2, recipe=light, device="cpu",
                          dask_address="local:2")
    assert out.shards_written == 3
    assert_same_arrays(read_all(ref), read_all(out.out))
    assert open_store(out.out).attrs["shards_done"] == [0, 1, 2]


# ---------------------------------------------------------------------------- safety
_KILLABLE = """
import sys, time
import posesynth.sampling.writer as writer
from posesynth.sample_recipe import resolve_sample_recipe
from posesynth.sampling import sample_to_store

write_shard = writer.write_shard
def slow_disk(*args):
    time.sleep(0.05)
    write_shard(*args)
writer.write_shard = slow_disk
recipe = resolve_sample_recipe(overrides={overrides!r})
sample_to_store(sys.argv[1], sys.argv[2], {n}, seed=5, recipe=recipe, device="cpu", workers=1)
"""


def test_resume_after_sigkill_equals_an_uninterrupted_run(tmp_path, train):
    overrides = ["sample.block_size=128", "sample.chunk_size=128", "sample.shard_size=128",
                 'sample.keypoint_sets=["smpl24"]']
    shards = 24
    n = 128 * shards - 50
    out = tmp_path / "killed.zarr"
    script = _KILLABLE.format(overrides=overrides, n=n)
    proc = subprocess.Popen([sys.executable, "-c", script, str(train), str(out)])
    done: list = []
    deadline = time.monotonic() + 60
    while len(done) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
        try:
            done = json.loads((out / "zarr.json").read_text())["attributes"]["shards_done"]
        except (OSError, ValueError, KeyError):
            pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    with pytest.raises(StoreError, match="incomplete"):
        open_store(out)
    assert 3 <= len(open_store(out, allow_incomplete=True).attrs["shards_done"]) < shards
    recipe = resolve_sample_recipe(overrides=overrides)
    summary = sample_to_store(train, out, n, seed=5, recipe=recipe, device="cpu", resume=True)
    assert summary.resumed and summary.shards_written < shards
    assert not list(out.rglob("*.partial"))
    ref = sample_to_store(train, tmp_path / "ref.zarr", n, seed=5, recipe=recipe, device="cpu").out
    assert_same_arrays(read_all(ref), read_all(out))
    assert open_store(out).attrs["shards_done"] == list(range(shards))


def test_existing_store_needs_overwrite_and_resume_needs_the_same_run(tmp_path, train, light):
    out = sample_to_store(train, tmp_path / "s.zarr", 200, recipe=light, device="cpu").out
    with pytest.raises(StoreError, match="--overwrite"):
        sample_to_store(train, out, 200, recipe=light, device="cpu")
    with pytest.raises(SampleError, match="cannot resume: its seed differs"):
        sample_to_store(train, out, 200, seed=1, recipe=light, device="cpu", resume=True)
    with pytest.raises(SampleError, match="holds 200 samples"):
        sample_to_store(train, out, 300, recipe=light, device="cpu", resume=True)
    again = sample_to_store(train, out, 200, recipe=light, device="cpu", resume=True)
    assert again.shards_written == 0
    sample_to_store(train, out, 100, recipe=light, device="cpu", overwrite=True)
    assert open_store(out)["label"].shape == (100,)


def test_full_disk_gives_a_clear_error_and_an_incomplete_store(tmp_path, train, light, monkeypatch):
    import posesynth.sampling.writer as writer

    calls = []

    def full(arrays, layout, shard, buffer):
        calls.append(shard)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_shard(arrays, layout, shard, buffer)

    write_shard = writer.write_shard
    monkeypatch.setattr(writer, "write_shard", full)
    out = tmp_path / "full.zarr"
    with pytest.raises(StoreError, match="the disk is full.*marked incomplete"):
        sample_to_store(train, out, 2000, recipe=light, device="cpu")
    with pytest.raises(StoreError, match="incomplete"):
        open_store(out)
    monkeypatch.undo()
    summary = sample_to_store(train, out, 2000, recipe=light, device="cpu", resume=True)
    assert summary.resumed and open_store(out).attrs["posesynth"]["complete"]


def test_unwritable_path_is_a_clear_error(tmp_path, train, light):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot create a store"):
        sample_to_store(train, blocker / "s.zarr", 100, recipe=light, device="cpu")


# ---------------------------------------------------------------------------- sources and labels
def test_store_pose_source_replays_yaw_free_rows(train):
    source = StorePoseSource(train, split="all")
    assert source.label_names == ("dash", "kickLFront1Reps", "raise-up-left-hand")
    assert source.identity == StorePoseSource(train).identity and source.identity.startswith("train.zarr:")
    batch = source.sample(64, torch.Generator().manual_seed(0))
    assert batch.rotmats.shape == (64, 24, 3, 3) and batch.betas.shape == (64, 10)
    assert yaw_angle(batch.rotmats[:, 0]).abs().max() < 1e-5
    again = source.sample(64, torch.Generator().manual_seed(0))
    assert torch.equal(batch.rotmats, again.rotmats)
    group = open_store(train)
    stored = group["body_pose"][:]
    body = axis_angle_to_matrix(torch.as_tensor(stored).reshape(-1, 23, 3))
    # Every drawn body pose is a stored row.
    diff = (batch.rotmats[:, None, 1:] - body[None]).abs().amax((-1, -2, -3))
    assert (diff.amin(1) < 1e-6).all()
    with pytest.raises(StoreError, match=r"train.zarr: split must be 'all' or one of \['train', 'val'\], got 'test'"):
        StorePoseSource(train, split="test")
    with pytest.raises(ValueError, match="label field"):
        StorePoseSource(train, label_field="mood")


def test_prior_betas_put_the_poses_on_smpls_prior(tmp_path, train):
    recipe = resolve_sample_recipe(overrides=SMALL + NO_AUGMENT + ['sample.keypoint_sets=["smpl24"]',
                                                                   'sample.betas="prior"'])
    betas = open_store(sample_to_store(train, tmp_path / "prior.zarr", 1024, recipe=recipe, device="cpu").out)["smpl/betas"][:]
    assert abs(betas.std() - 1) < 0.1 and np.abs(betas).max() <= 3


def test_label_conditioning(tmp_path, train, light):
    recipe = resolve_sample_recipe(overrides=SMALL + NO_AUGMENT + ['sample.keypoint_sets=["smpl24"]',
                                                                   'sample.label="dash"'])
    out = sample_to_store(train, tmp_path / "dash.zarr", 300, recipe=recipe, device="cpu").out
    group = open_store(out)
    assert (group["label"][:] == 0).all() and group.attrs["recipe"]["sample"]["label"] == "dash"
    store = open_store(train)
    dash_poses = store["body_pose"][:][store["content"][:] == 0]
    drawn = group["smpl/body_pose"][:]
    nearest = np.abs(drawn[:, None] - dash_poses[None]).max(-1).min(1)
    assert nearest.max() < 1e-4  # axis-angle round trip
    bad = resolve_sample_recipe(overrides=SMALL + ['sample.label="swim"'])
    with pytest.raises(PoseSourceError, match="has no label 'swim'; its labels: dash"):
        sample_to_store(train, tmp_path / "x.zarr", 10, recipe=bad, device="cpu")


def test_load_pose_source(tmp_path, train):
    assert isinstance(load_pose_source(train), StorePoseSource)
    with pytest.raises(ValueError, match="checkpoint not found"):
        load_pose_source(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="no such checkpoint or training store"):
        load_pose_source(tmp_path / "missing.zarr")


# ---------------------------------------------------------------------------- recipe and CLI
def test_recipe_overrides_and_validation():
    assert resolve_sample_recipe() == resolve_sample_recipe(recipe_path("sample_default"))
    multiview = resolve_sample_recipe(recipe_path("sample_multiview"))
    assert multiview.camera.views == 4 and multiview.sample.keypoint_sets == ["smpl24", "h36m17"]
    recipe = resolve_sample_recipe(overrides=["camera.distance_m=[3, 5]", "camera.fov_deg=[50, 70]", "camera.views=3"])
    assert recipe.camera.distance_m == [3, 5] and recipe.camera.views == 3
    assert recipe.camera.focal_px == [] and recipe.camera.preset == "h36m"
    wild = resolve_sample_recipe(overrides=['camera.preset="in_the_wild"'])
    assert wild.camera.allow_truncation is True
    coco = resolve_sample_recipe(overrides=['sample.keypoint_sets=["coco17"]'])
    assert coco.sample.keypoint_sets == ["smpl24", "coco17"]
    for bad, message in [("sample.chunk_size=1000", "multiple of sample.block_size"),
                         ('sample.keypoint_sets=["mpii"]', "unknown keypoint set"),
                         ("camera.distance_m=[5, 3]", "lo > hi"), ("sample.bogus=1", "unknown key"),
                         ('sample.betas="mean"', "sample.betas")]:
        with pytest.raises(RecipeError, match=message):
            resolve_sample_recipe(overrides=[bad])


def test_cli_sample(tmp_path, train):
    out = tmp_path / "cli.zarr"
    args = ["sample", "--n", "300", "--out", str(out), "--checkpoint", str(train), "--views", "2", "--label", "dash",
            "--seed", "4", "--device", "cpu", "--set", "sample.block_size=128", "--set", "sample.chunk_size=128",
            "--set", "sample.shard_size=256", "--set", 'sample.keypoint_sets=["smpl24"]']
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "wrote 300 samples" in result.output
    group = open_store(out)
    assert group["camera/K"].shape == (300, 2, 3, 3) and group.attrs["seed"] == 4
    again = CliRunner().invoke(main, args)
    assert again.exit_code != 0 and "--overwrite" in again.output
    missing = CliRunner().invoke(main, ["sample", "--n", "10", "--out", str(tmp_path / "y.zarr"),
                                        "--checkpoint", str(tmp_path / "none.pt")])
    assert missing.exit_code != 0 and "checkpoint not found" in missing.output


def test_tempering_a_source_that_is_not_a_generator_is_refused(tmp_path, train):
    recipe = resolve_sample_recipe(overrides=SMALL + ["augment.temperature=1.5"])
    with pytest.raises(SampleError, match="augment.temperature = 1.5: .* is not a GAN checkpoint"):
        sample_to_store(train, tmp_path / "t.zarr", 10, recipe=recipe, device="cpu")


@pytest.mark.parametrize("overrides, mechanism", [
    (["augment.mutation=0.5"], "mutation"),
    (["augment.mutation=0", "augment.crouch=0.5"], "crouch"),
])
def test_turning_a_source_without_joint_limits_is_refused(tmp_path, overrides, mechanism):
    payload = read_checkpoint_file(DEFAULT_CHECKPOINT)
    payload.pop("joint_limits", None)  # as a checkpoint trained before they were recorded
    torch.save(payload, tmp_path / "old.pt")
    recipe = resolve_sample_recipe(overrides=SMALL + overrides)
    with pytest.raises(SampleError, match=f"augment.{mechanism}: .* has no joint limits"):
        sample_to_store(tmp_path / "old.pt", tmp_path / "m.zarr", 10, recipe=recipe, device="cpu")
    assert not (tmp_path / "m.zarr").exists()


def test_a_training_store_crouches_its_poses_within_its_own_joint_limits_without_mutation(tmp_path, train):
    def body_poses(crouch):
        recipe = resolve_sample_recipe(overrides=SMALL + NO_AUGMENT + ['sample.keypoint_sets=["smpl24"]',
                                                                       f"augment.crouch={crouch}"])
        sample_to_store(train, tmp_path / f"c{crouch}.zarr", 256, recipe=recipe, device="cpu")
        return torch.as_tensor(open_store(tmp_path / f"c{crouch}.zarr")["smpl/body_pose"][:]).view(-1, 23, 3)

    crouched, limits = body_poses(1.0), StorePoseSource(train).joint_limits
    assert not torch.allclose(crouched, body_poses(0.0))
    assert ((crouched >= limits.low[1:] - 1e-4) & (crouched <= limits.high[1:] + 1e-4)).all()


def test_a_training_store_mutates_its_poses_within_its_own_joint_limits(tmp_path, train):
    def body_poses(mutation):
        recipe = resolve_sample_recipe(overrides=SMALL + NO_AUGMENT + ['sample.keypoint_sets=["smpl24"]',
                                                                       f"augment.mutation={mutation}",
                                                                       "augment.mutation_deg=45"])
        sample_to_store(train, tmp_path / f"m{mutation}.zarr", 256, recipe=recipe, device="cpu")
        return torch.as_tensor(open_store(tmp_path / f"m{mutation}.zarr")["smpl/body_pose"][:]).view(-1, 23, 3)

    mutated, limits = body_poses(1.0), StorePoseSource(train).joint_limits
    assert not torch.allclose(mutated, body_poses(0.0))
    assert ((mutated >= limits.low[1:] - 1e-4) & (mutated <= limits.high[1:] + 1e-4)).all()
