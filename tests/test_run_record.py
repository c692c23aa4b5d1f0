"""The run record (``run`` attribute, ``run`` checkpoint entry): versions, device, command line,
and a source path relative to the store; none of it changes the data a seed makes."""

import os
from importlib.metadata import version

import pytest
import zarr
from click.testing import CliRunner

from posesynth import __version__
from posesynth.cli import main
from posesynth.gan.checkpoint import DEFAULT_CHECKPOINT, read_checkpoint_file
from posesynth.gan.train import train
from posesynth.run_record import PACKAGES, command_line, describe_device, run_record
from posesynth.sample_recipe import resolve_sample_recipe
from posesynth.sampling import sample_to_store
from posesynth.sampling.resume import source_path
from test_gan import TINY
from test_sampling import SMALL, assert_same_arrays, read_all, training_store

LIGHT = SMALL + ['sample.keypoint_sets=["smpl24"]']


@pytest.fixture(scope="module")
def train_store(tmp_path_factory):
    return training_store(tmp_path_factory)


def attrs(path):
    return dict(zarr.open_group(str(path), mode="r").attrs)


def sample(train_store, out, **kwargs):
    return sample_to_store(train_store, out, 200, seed=5, recipe=resolve_sample_recipe(overrides=LIGHT),
                           device="cpu", **kwargs).out


def test_the_record_names_versions_device_and_time():
    record = run_record("cpu")
    assert record["posesynth"] == __version__ and record["device"] == "cpu"
    assert set(record["packages"]) == set(PACKAGES) and record["packages"]["zarr"] == version("zarr")
    assert record["command"] is None and record["created"].endswith("+00:00")


def test_a_cuda_device_is_named_with_its_index_and_model(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: f"GPU model {index}")
    assert describe_device("cuda") == "cuda:1 (GPU model 1)"
    assert describe_device("cuda:0") == "cuda:0 (GPU model 0)"
    assert describe_device(torch.device("cpu")) == "cpu"


def test_a_sample_store_records_its_run(train_store, tmp_path):
    record = attrs(sample(train_store, tmp_path / "s.zarr"))["run"]
    assert record["device"] == "cpu" and record["packages"]["torch"] == version("torch")
    assert record["command"] is None  # a library call, not the command


def test_the_cli_records_its_command_line(train_store, tmp_path):
    out = tmp_path / "s.zarr"
    args = ["sample", "--n", "128", "--out", str(out), "--checkpoint", str(train_store), "--device", "cpu",
            *[a for o in LIGHT for a in ("--set", o)]]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert attrs(out)["run"]["command"] == ["posesynth", *args]


def test_a_training_store_records_its_run(train_store):
    record = attrs(train_store)["run"]
    assert record["device"] == "cpu" and record["posesynth"] == __version__


def test_a_gan_checkpoint_records_its_run(train_store, tmp_path):
    with command_line(["posesynth", "train", "--data", str(train_store)]):
        ckpt = train(None, train_store, tmp_path / "run", TINY + ("train.steps=1",), progress=False)
    record = read_checkpoint_file(ckpt)["run"]
    assert record["device"] == "cpu" and record["command"] == ["posesynth", "train", "--data", str(train_store)]


def test_the_source_path_is_relative_to_the_folder_holding_the_store(train_store, tmp_path):
    out = tmp_path / "deep" / "s.zarr"
    recorded = attrs(sample(train_store, out))["source"]["path"]
    assert not os.path.isabs(recorded)
    assert (out.parent / recorded).resolve() == train_store.resolve()


def test_the_shipped_checkpoint_is_named_by_hash_only(tmp_path):
    assert source_path(DEFAULT_CHECKPOINT, tmp_path / "s.zarr") is None
    assert source_path(None, tmp_path / "s.zarr") is None
    assert source_path(tmp_path / "a" / "ckpt.pt", tmp_path / "b" / "s.zarr") == "../a/ckpt.pt"


def test_the_same_seed_gives_the_same_data_whatever_the_run_record(train_store, tmp_path):
    first = sample(train_store, tmp_path / "a.zarr")
    with command_line(["posesynth", "sample", "--seed", "5"]):
        second = sample(train_store, tmp_path / "b.zarr")
    assert attrs(first)["run"] != attrs(second)["run"]  # another command line (and maybe another second)
    assert_same_arrays(read_all(first), read_all(second))
    assert {k: v for k, v in attrs(first).items() if k != "run"} == {k: v for k, v in attrs(second).items()
                                                                    if k != "run"}
