"""The pose GAN on tiny configs: shapes, determinism, checkpoints, resume, sampling."""

import pytest
import torch

from conftest import FIXTURES
from posesynth.gan.checkpoint import CheckpointError, load_checkpoint, read_checkpoint_file
from posesynth.gan.train import train
from posesynth.pose_source import PoseSourceError, check_unseen, label_index
from posesynth.prepare import PrepareOptions, prepare

TINY = ("model.latent=8", "model.width=32", "model.blocks=1", "model.label_embedding=4", "model.disc_width=32",
        "model.part_width=16", "train.batch_size=32", "train.log_every=2", "train.eval_every=1000",
        "train.state_every=3", "eval.samples=200", "eval.val_poses=50", "loss.cycle=1.0")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    out = tmp_path_factory.mktemp("gan") / "train.zarr"
    prepare([FIXTURES], out, PrepareOptions(workers=1, val_fraction=0.0, val_contents=("dash",)), progress=False)
    return out


@pytest.fixture(scope="module")
def checkpoint(store, tmp_path_factory):
    """A 2-step run's checkpoint, shared by the tests that only read it."""
    return run(store, tmp_path_factory.mktemp("run"), 2)


def run(store, out, steps, *extra):
    return train(None, store, out, TINY + (f"train.steps={steps}",) + extra, progress=False)


def weights(path):
    return read_checkpoint_file(path)["generator"]


def test_training_writes_a_loadable_checkpoint_and_logs(store, tmp_path):
    ckpt = run(store, tmp_path / "run", 4)
    assert (tmp_path / "run" / "recipe.toml").is_file() and (tmp_path / "run" / "state.pt").is_file()
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert any('"eval"' in line for line in lines) and any('"d_loss"' in line for line in lines)
    source = load_checkpoint(ckpt)
    assert source.label_field == "content"
    assert set(source.label_names) == {"dash", "kickLFront1Reps", "raise-up-left-hand"}
    batch = source.sample(10, torch.Generator().manual_seed(0))
    assert batch.rotmats.shape == (10, 24, 3, 3) and batch.betas.shape == (10, 10)
    eye = torch.eye(3).expand(10, 24, 3, 3)
    torch.testing.assert_close(batch.rotmats.transpose(-1, -2) @ batch.rotmats, eye, atol=1e-5, rtol=0)
    assert (batch.labels == -1).all()


def test_a_checkpoint_samples_the_label_it_is_conditioned_on(checkpoint):
    source = load_checkpoint(checkpoint)
    kick = label_index(source, "kickLFront1Reps")
    assert (source.sample(3, torch.Generator().manual_seed(0), label=kick).labels == kick).all()


def test_a_label_the_checkpoint_lacks_is_named_with_the_ones_it_has(checkpoint):
    source = load_checkpoint(checkpoint)
    with pytest.raises(PoseSourceError, match="has no label 'dance'; its labels: .*kickLFront1Reps"):
        label_index(source, "dance")


def test_a_checkpoint_records_its_training_files_and_refuses_to_be_measured_on_them(checkpoint):
    source = load_checkpoint(checkpoint)
    assert len(source.training_files) == 2 and not any("dash" in f for f in source.training_files)
    assert check_unseen(source, ["bandai_namco/dataset-1/dataset-1_dash_normal_001.bvh"], "the val split")
    with pytest.raises(PoseSourceError, match="was trained on 1 of the val split's files"):
        check_unseen(source, [source.training_files[0]], "the val split")


def test_training_without_the_render_extra_writes_the_checkpoint_and_says_why_not_the_curves(
        store, tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    ckpt = run(store, tmp_path / "run", 2)
    assert ckpt.is_file() and not (tmp_path / "run" / "curves.png").exists()
    assert "curves.png not written: plotting needs the [render] extra" in capsys.readouterr().err


def test_same_seed_same_weights_and_resume_is_exact(store, tmp_path):
    a = run(store, tmp_path / "a", 6)
    b = run(store, tmp_path / "b", 6)
    for k, v in weights(a).items():
        torch.testing.assert_close(weights(b)[k], v, atol=0, rtol=0)
    # Interrupted after 3 steps (the last saved state), then resumed to 6.
    run(store, tmp_path / "c", 3)
    c = run(store, tmp_path / "c", 6)
    for k, v in weights(a).items():
        torch.testing.assert_close(weights(c)[k], v, atol=0, rtol=0)


def test_sampling_is_deterministic_and_split_invariant(store, tmp_path):
    source = load_checkpoint(run(store, tmp_path / "run", 2))
    one = source.sample(8, torch.Generator().manual_seed(5))
    two = source.sample(8, torch.Generator().manual_seed(5))
    torch.testing.assert_close(one.rotmats, two.rotmats, atol=0, rtol=0)
    torch.testing.assert_close(one.betas, two.betas, atol=0, rtol=0)


def test_resume_refuses_a_different_recipe_and_a_corrupt_state(store, tmp_path):
    run(store, tmp_path / "run", 3)
    with pytest.raises(ValueError, match="different recipe"):
        run(store, tmp_path / "run", 6, "model.width=64")
    (tmp_path / "run" / "state.pt").write_bytes(b"cut short by a crash")
    with pytest.raises(CheckpointError, match=r"state.pt: not a readable training state \(delete it to start over\)"):
        run(store, tmp_path / "run", 6)


def test_corrupt_and_foreign_checkpoints_are_refused(store, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pt: not a readable posesynth checkpoint"):
        load_checkpoint(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not a posesynth GAN checkpoint"):
        load_checkpoint(foreign)
    ckpt = run(store, tmp_path / "run", 2)
    payload = torch.load(ckpt, weights_only=True)
    payload["recipe"]["model"]["width"] = 64  # weights no longer fit the recipe
    mismatched = tmp_path / "mismatched.pt"
    torch.save(payload, mismatched)
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(mismatched)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_fitted_betas_prior_is_centred_on_the_training_bodies(store):
    import numpy as np
    import zarr

    from posesynth.body_prior import BetasPrior, fit_betas_prior

    group = zarr.open_group(str(store), mode="r")
    bodies = np.unique(group["betas"][:][group["split"][:] == 0], axis=0)
    prior = fit_betas_prior(store, "fitted", std=0.5, clip=2.0)
    assert len(bodies) >= 2  # the fixture clips come from more than one fitted body
    np.testing.assert_allclose(prior.mean.numpy(), bodies.mean(0), atol=1e-5)
    np.testing.assert_allclose(prior.std.numpy(), np.sqrt(bodies.var(0) + 0.25), atol=1e-5)
    draws = prior.sample(5000, torch.Generator().manual_seed(0))
    assert draws.shape == (5000, 10)
    assert ((draws - prior.mean).abs() <= 2.0 * prior.std + 1e-5).all()  # clipped at 2 standard deviations
    standard = fit_betas_prior(store, "standard", std=1.0, clip=2.5)
    assert torch.equal(standard.mean, torch.zeros(10)) and torch.equal(standard.std, torch.ones(10))
    again = BetasPrior.from_dict(standard.to_dict())
    assert torch.equal(again.mean, standard.mean) and torch.equal(again.std, standard.std) and again.clip == 2.5
    with pytest.raises(ValueError, match="betas prior"):
        fit_betas_prior(store, "uniform")


def test_checkpoint_samples_bodies_from_its_fitted_prior(store, tmp_path):
    from posesynth.body_prior import fit_betas_prior

    source = load_checkpoint(run(store, tmp_path / "run", 2))
    expected = fit_betas_prior(store)
    torch.testing.assert_close(source.betas_prior.mean, expected.mean)
    betas = source.sample(4000, torch.Generator().manual_seed(0)).betas
    assert (betas.mean(0) - expected.mean).abs().max() < 0.2


@pytest.fixture(scope="module")
def evaluation(store, checkpoint):
    from posesynth.evaluate import evaluate

    return evaluate(load_checkpoint(checkpoint), store, n=300, n_per_class=50, min_class_frames=1,
                    log=lambda message: None)


def test_evaluate_reports_every_set_and_coverage_per_validation_group(evaluation):
    from posesynth.evaluate import format_table

    result = evaluation
    names = [row["set"] for row in result["sets"]]
    assert names[0] == "posesynth (N=300)" and names[2].startswith("training poses")
    # the fixture's validation split is one held-out class ("dash") of Bandai Namco clips
    assert result["val_group_sizes"] == {"source bandai_namco": result["val_poses"], "unseen class": result["val_poses"]}
    for row in result["sets"]:
        for group in result["val_group_sizes"]:  # a group holding every validation pose is the whole
            assert row["coverage_by_group"][group]["median_mm"] == pytest.approx(row["coverage_median_mm"])
        assert 0.0 <= row["plausible"] <= 1.0 and row["bone_asymmetry_mm"] < 1e-3
    classes = {c["class"] for c in result["conditional"]["classes"]}
    assert classes == {"kickLFront1Reps", "raise-up-left-hand"}  # "dash" has no training frames
    table = format_table(result)
    assert "| set | source bandai_namco | unseen class |" in table and "conditional sampling (content)" in table


def test_evaluate_measures_novelty_of_every_set_but_the_training_poses(evaluation):
    from posesynth.evaluate import format_table

    sets = evaluation["sets"]
    assert sets[2]["set"].startswith("training poses") and sets[2]["novelty_median_mm"] is None
    assert all(row["novelty_median_mm"] > 0 for i, row in enumerate(sets) if i != 2)
    training_row = format_table(evaluation).splitlines()[4]  # after the header, the rule and two rows
    assert training_row.startswith("| training poses") and training_row.split(" | ")[5] == "-"


def test_tempered_samples_pass_the_plausibility_checks(store, tmp_path):
    from posesynth.plausibility import implausible

    source = load_checkpoint(run(store, tmp_path / "run", 3)).tempered(2.5)
    batch = source.sample(300, torch.Generator().manual_seed(0))
    assert not implausible(batch.rotmats, source.joint_limits)["any"].any()


def test_tempering_widens_the_latents_and_one_changes_nothing(store, tmp_path):
    source = load_checkpoint(run(store, tmp_path / "run", 3))
    plain = source.sample(50, torch.Generator().manual_seed(1))
    same = source.tempered(1.0).sample(50, torch.Generator().manual_seed(1))
    assert torch.equal(plain.rotmats, same.rotmats) and torch.equal(plain.betas, same.betas)
    assert source.tempered(3.0).temperature == 3.0 and source.temperature == 1.0


def test_a_checkpoint_without_joint_limits_cannot_be_tempered(store, tmp_path):
    ckpt = run(store, tmp_path / "run", 3)
    payload = read_checkpoint_file(ckpt)
    payload["joint_limits"] = None
    torch.save(payload, ckpt)
    with pytest.raises(CheckpointError, match="no joint limits"):
        load_checkpoint(ckpt).tempered(1.5)
