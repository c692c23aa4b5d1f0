"""What a concurrent, failed, killed or interrupted store writer leaves behind (issue 13):
one writer at a time, arguments checked before the disk is touched, a replaced store kept
until its replacement is complete, finite data only, and one-line errors."""

import errno
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zarr
from click.testing import CliRunner

from posesynth.cli import main
from posesynth.locking import LockError, exclusive_lock
from posesynth.pose_source import PoseBatch, StorePoseSource
from posesynth.sample_recipe import resolve_sample_recipe
from posesynth.sampling import SampleError, sample_to_store
from posesynth.sampling.resume import remove_partial_files
from posesynth.store import StoreError, lock_path, open_store, staging_path, writing_store
from test_sampling import assert_same_arrays, read_all, training_store

LAYOUT = ["sample.block_size=128", "sample.chunk_size=256", "sample.shard_size=512", 'sample.keypoint_sets=["smpl24"]']
SETS = [arg for s in LAYOUT for arg in ("--set", s)]


@pytest.fixture(scope="module")
def train(tmp_path_factory):
    return training_store(tmp_path_factory)


@pytest.fixture(scope="module")
def light():
    return resolve_sample_recipe(overrides=LAYOUT)


def sample_args(train, out, n=600, seed=0, *extra):
    return ["sample", "--n", str(n), "--out", str(out), "--checkpoint", str(train), "--seed", str(seed),
            "--device", "cpu", "--workers", "1", *SETS, *extra]


def one_line_error(result) -> str:
    """The CLI's output for a refused command: exit status 1 and exactly one line ``error: ...``."""
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1, result.output
    assert "Traceback" not in result.output
    return result.output


def old_store(train, light, out, seed=0):
    """A complete 200-sample store at ``out`` and a copy of its arrays."""
    sample_to_store(train, out, 200, seed=seed, recipe=light, device="cpu")
    return read_all(out)


# ---------------------------------------------------------------------------- 1. one writer at a time
_GATED_WRITER = """
import sys, time
from pathlib import Path
import posesynth.sampling.writer as writer
from posesynth.cli import main

gate = Path(sys.argv[1])
write_shard = writer.write_shard
def gated(*args):  # holds every shard until the test opens the gate
    deadline = time.monotonic() + 120
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    write_shard(*args)
writer.write_shard = gated
main(sys.argv[2:])
"""


def start_gated_writer(args, gate: Path, out: Path) -> subprocess.Popen:
    """A ``posesynth`` process writing ``out`` that holds its lock until ``gate`` exists."""
    proc = subprocess.Popen([sys.executable, "-c", _GATED_WRITER, str(gate), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if json.loads(lock_path(out).read_text())["pid"] == proc.pid:
                return proc
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"the writer never took the lock: {proc.communicate()}")


def test_a_second_writer_is_refused_naming_the_first_and_the_first_finishes_whole(tmp_path, train, light):
    out, gate = tmp_path / "c.zarr", tmp_path / "gate"
    old_store(train, light, out)
    first = start_gated_writer(sample_args(train, out, 1500, 3, "--overwrite"), gate, out)
    try:
        second = subprocess.run([sys.executable, "-m", "posesynth.cli", *sample_args(train, out, 1500, 4, "--overwrite")],
                                capture_output=True, text=True, timeout=300)
    finally:
        gate.touch()
        first_out, first_err = first.communicate(timeout=300)
    assert second.returncode == 1 and "Traceback" not in second.stderr
    assert second.stderr.splitlines()[-1].startswith(f"error: {out} is being written by another process "
                                                     f"(pid {first.pid}: ")
    assert first.returncode == 0, first_err
    reference = sample_to_store(train, tmp_path / "ref.zarr", 1500, seed=3, recipe=light, device="cpu").out
    assert_same_arrays(read_all(reference), read_all(out))
    assert open_store(out).attrs["seed"] == 3 and not lock_path(out).exists()


@pytest.mark.parametrize("flag", [[], ["--overwrite"], ["--resume"]])
def test_a_locked_store_refuses_a_writer_an_overwrite_and_a_resume(tmp_path, train, light, flag):
    out, gate = tmp_path / "c.zarr", tmp_path / "gate"
    first = start_gated_writer(sample_args(train, out, 1500, 3), gate, out)
    try:
        result = CliRunner().invoke(main, sample_args(train, out, 1500, 3, *flag))
    finally:
        gate.touch()
        first.communicate(timeout=300)
    assert f"being written by another process (pid {first.pid}" in one_line_error(result)
    assert first.returncode == 0 and open_store(out).attrs["posesynth"]["complete"]


def test_a_killed_writer_leaves_no_lock_and_resume_finishes_its_store(tmp_path, train, light):
    out, gate = tmp_path / "c.zarr", tmp_path / "gate"
    first = start_gated_writer(sample_args(train, out, 1500, 3), gate, out)
    deadline = time.monotonic() + 60
    while not (out / "keypoints" / "smpl24" / "visible" / "zarr.json").exists() and time.monotonic() < deadline:
        time.sleep(0.02)  # every array created: the writer waits at its first shard
    first.kill()
    first.communicate()
    assert lock_path(out).exists()  # left by the kill, but the OS released the lock with the process
    summary = sample_to_store(train, out, 1500, seed=3, recipe=light, device="cpu", resume=True)
    assert summary.shards_written == 3 and open_store(out).attrs["posesynth"]["complete"]
    assert not lock_path(out).exists()


def test_the_lock_refuses_a_second_holder_in_another_open_and_is_removed_on_release(tmp_path):
    lock = tmp_path / "s.zarr.lock"
    with exclusive_lock(lock, "s.zarr"):
        with pytest.raises(LockError, match=r"s.zarr is being written by another process \(pid \d+"):
            with exclusive_lock(lock, "s.zarr"):
                pass
    assert not lock.exists()
    with exclusive_lock(lock, "s.zarr"):  # free again
        pass


# ---------------------------------------------------------------------------- 2. nothing touched before the checks
@pytest.mark.parametrize(("extra", "message"), [
    (["--label", "nosuchlabel"], "has no label 'nosuchlabel'"),
    (["--dask", "local:0"], "--dask local:0: expected local:K with K >= 1"),
    (["--device", "tpu"], "--device tpu: not a device"),
])
def test_a_refused_overwrite_leaves_the_old_store_untouched(tmp_path, train, light, extra, message):
    out = tmp_path / "k.zarr"
    before = old_store(train, light, out)
    result = CliRunner().invoke(main, sample_args(train, out, 100, 0, "--overwrite", *extra))
    assert message in one_line_error(result)
    assert_same_arrays(before, read_all(out))
    assert open_store(out).attrs["posesynth"]["complete"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.zarr"]


def test_an_unreachable_scheduler_is_reported_as_such_and_touches_nothing(tmp_path, train, light, monkeypatch):
    pytest.importorskip("distributed")
    import posesynth.sampling.cluster as cluster

    monkeypatch.setattr(cluster, "DASK_CONNECT_TIMEOUT", 1)
    out = tmp_path / "k.zarr"
    before = old_store(train, light, out)
    result = CliRunner().invoke(main, sample_args(train, out, 100, 0, "--overwrite", "--dask", "tcp://127.0.0.1:1"))
    message = one_line_error(result)
    assert "--dask tcp://127.0.0.1:1: cannot reach the scheduler" in message and "disk" not in message
    assert_same_arrays(before, read_all(out))


def full_disk_after(monkeypatch, shards: int) -> None:
    """Make every shard write after the first ``shards`` fail with ENOSPC."""
    import posesynth.sampling.writer as writer

    calls, write_shard = [], writer.write_shard

    def full(*args):
        calls.append(1)
        if len(calls) > shards:
            raise OSError(errno.ENOSPC, "No space left on device")
        write_shard(*args)

    monkeypatch.setattr(writer, "write_shard", full)


def test_an_overwrite_that_fails_half_way_keeps_the_old_store(tmp_path, train, light, monkeypatch):
    out = tmp_path / "k.zarr"
    before = old_store(train, light, out)
    full_disk_after(monkeypatch, 1)
    with pytest.raises(StoreError, match="the disk is full; the new store is left incomplete at .*k.zarr.new"):
        sample_to_store(train, out, 1500, seed=9, recipe=light, device="cpu", overwrite=True)
    assert_same_arrays(before, read_all(out))
    assert open_store(out).attrs["posesynth"]["complete"] and open_store(out).attrs["seed"] == 0


def test_resume_finishes_an_interrupted_replacement_and_swaps_it_in(tmp_path, train, light, monkeypatch):
    out = tmp_path / "k.zarr"
    old_store(train, light, out)
    full_disk_after(monkeypatch, 1)
    with pytest.raises(StoreError):
        sample_to_store(train, out, 1500, seed=9, recipe=light, device="cpu", overwrite=True)
    monkeypatch.undo()
    summary = sample_to_store(train, out, 1500, seed=9, recipe=light, device="cpu", resume=True)
    assert summary.resumed and summary.shards_written == 2
    reference = sample_to_store(train, tmp_path / "ref.zarr", 1500, seed=9, recipe=light, device="cpu").out
    assert_same_arrays(read_all(reference), read_all(out))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.zarr", "ref.zarr"]


def test_a_swap_killed_between_its_renames_is_finished_by_the_next_writer(tmp_path, train, light):
    out = tmp_path / "k.zarr"
    old_store(train, light, out, seed=1)
    new = old_store(train, light, staging_path(out), seed=2)
    out.rename(out.with_name("k.zarr.old"))  # killed after the first rename
    with writing_store(out, overwrite=True):
        pass
    assert_same_arrays(new, read_all(out))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.zarr"]


def test_a_swap_killed_before_the_replacement_was_complete_restores_the_old_store(tmp_path, train, light):
    out = tmp_path / "k.zarr"
    before = old_store(train, light, out, seed=1)
    staging_path(out).mkdir()
    out.rename(out.with_name("k.zarr.old"))
    with pytest.raises(StoreError, match="already exists; pass --overwrite"):
        with writing_store(out):
            pass
    assert_same_arrays(before, read_all(out))


# ---------------------------------------------------------------------------- 3. finite data only
class NaNSource:
    """The training store's poses with a NaN in every pose's left knee (the augmentation cannot mend it)."""

    def __init__(self, path: Path) -> None:
        self.inner = StorePoseSource(path)
        self.label_names, self.joint_limits = self.inner.label_names, self.inner.joint_limits
        self.identity = "nan:" + self.inner.identity

    def sample(self, n, generator, label=None, device="cpu") -> PoseBatch:
        batch = self.inner.sample(n, generator, label, device)
        rotmats = batch.rotmats.clone()
        rotmats[:, 4, 0, 0] = float("nan")
        return PoseBatch(rotmats, batch.betas, batch.labels)


def test_samples_that_are_not_finite_are_refused_and_never_written(tmp_path, train, light):
    out = tmp_path / "nan.zarr"
    with pytest.raises(SampleError, match=r"smpl/body_pose, rows 0..511: NaN or infinite values in the stored float32"):
        sample_to_store(NaNSource(train), out, 600, recipe=light, device="cpu")
    group = open_store(out, allow_incomplete=True)
    assert not group.attrs["posesynth"]["complete"] and group.attrs["shards_done"] == []
    assert not group["smpl/body_pose"][:].any()  # still the fill value: no row was written


# ---------------------------------------------------------------------------- 5. one-line errors
@pytest.fixture
def read_only_folder(tmp_path):
    """A folder on a read-only file system (a tmpfs remounted read-only; needs root and mount)
    and a function that fills it before it is made read-only."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(folder)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield folder, lambda: subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("flag", ["--resume", "--overwrite"])
def test_resume_and_overwrite_on_a_read_only_file_system_are_one_line_errors(train, light, read_only_folder, flag):
    folder, make_read_only = read_only_folder
    out = folder / "s.zarr"
    sample_to_store(train, out, 200, recipe=light, device="cpu")
    make_read_only()
    result = CliRunner().invoke(main, sample_args(train, out, 200, 0, flag))
    assert "the file system is read-only" in one_line_error(result)


def test_a_killed_writers_temporary_files_that_cannot_be_removed_are_a_store_error(tmp_path, monkeypatch):
    out = tmp_path / "s.zarr"
    (out / "label").mkdir(parents=True)
    (out / "label" / "0.0123456789abcdef0123456789abcdef.partial").write_bytes(b"killed mid-write")

    def read_only(self, missing_ok=False):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(Path, "unlink", read_only)
    with pytest.raises(StoreError, match="cannot resume .*s.zarr: cannot remove the temporary files of the "
                                         "interrupted run: the file system is read-only"):
        remove_partial_files(out)


def test_a_store_killed_before_its_attributes_were_written_is_named_incomplete(tmp_path):
    out = tmp_path / "half.zarr"
    zarr.open_group(str(out), mode="w", zarr_format=2)  # .zgroup written, .zattrs not yet
    result = CliRunner().invoke(main, ["info", str(out)])
    assert "incomplete store, attributes missing (posesynth)" in one_line_error(result)


def stopped_while_creating_arrays(train, light, out, monkeypatch):
    """A store whose run was stopped after it had created two of its arrays."""
    import posesynth.sampling.resume as resume

    created, create_array = [], resume.create_array

    def stops(*args, **kwargs):
        if len(created) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        created.append(create_array(*args, **kwargs))

    monkeypatch.setattr(resume, "create_array", stops)
    with pytest.raises(StoreError):
        sample_to_store(train, out, 600, recipe=light, device="cpu")
    monkeypatch.undo()


def test_info_on_a_store_stopped_while_creating_its_arrays_names_what_is_missing(tmp_path, train, light, monkeypatch):
    out = tmp_path / "half.zarr"
    stopped_while_creating_arrays(train, light, out, monkeypatch)
    result = CliRunner().invoke(main, ["info", str(out)])
    assert "incomplete store, arrays missing (label, camera/K" in one_line_error(result)


def test_resume_creates_the_arrays_a_stopped_run_had_not_made(tmp_path, train, light, monkeypatch):
    out = tmp_path / "half.zarr"
    stopped_while_creating_arrays(train, light, out, monkeypatch)
    sample_to_store(train, out, 600, recipe=light, device="cpu", resume=True)
    reference = sample_to_store(train, tmp_path / "ref.zarr", 600, recipe=light, device="cpu").out
    assert_same_arrays(read_all(reference), read_all(out))


def test_resume_of_a_store_without_its_run_attributes_names_them(tmp_path, train, light):
    out = tmp_path / "s.zarr"
    sample_to_store(train, out, 200, recipe=light, device="cpu")
    meta = json.loads((out / "zarr.json").read_text())
    meta["attributes"] = {"posesynth": {**meta["attributes"]["posesynth"], "complete": False}}
    (out / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError, match=r"incomplete store, attributes missing \(recipe, seed, source"):
        sample_to_store(train, out, 200, recipe=light, device="cpu", resume=True)


@pytest.mark.parametrize("junk", [b"\x00\x01 not json", b"[1, 2]", b""])
def test_a_corrupt_root_metadata_file_is_a_one_line_error(tmp_path, train, light, junk):
    out = tmp_path / "s.zarr"
    sample_to_store(train, out, 200, recipe=light, device="cpu")
    (out / "zarr.json").write_bytes(junk)
    result = CliRunner().invoke(main, ["info", str(out)])
    assert f"{out}: not a readable Zarr store: its metadata is corrupt" in one_line_error(result)


# ---------------------------------------------------------------------------- 7. smaller
def test_an_empty_folder_at_out_is_written_into(tmp_path, train):
    out = tmp_path / "e.zarr"
    out.mkdir()
    result = CliRunner().invoke(main, sample_args(train, out, 100))
    assert result.exit_code == 0, result.output
    assert open_store(out).attrs["posesynth"]["complete"]


def test_a_rerun_over_an_incomplete_store_suggests_resume(tmp_path, train, light, monkeypatch):
    out = tmp_path / "s.zarr"
    full_disk_after(monkeypatch, 1)
    with pytest.raises(StoreError):
        sample_to_store(train, out, 1500, recipe=light, device="cpu")
    monkeypatch.undo()
    result = CliRunner().invoke(main, sample_args(train, out, 1500))
    assert "holds an incomplete store (an interrupted or failed run); pass --resume to finish it" in one_line_error(result)


def test_a_refused_resume_names_the_recipe_key_that_differs(tmp_path, train, light):
    out = tmp_path / "s.zarr"
    sample_to_store(train, out, 200, recipe=light, device="cpu")
    result = CliRunner().invoke(main, sample_args(train, out, 200, 0, "--resume", "--views", "3"))
    assert "its recipe differs from this run's (recipe.camera.views is 1 in the store, 3 in this run)" in \
        one_line_error(result)


def test_a_store_lock_file_left_by_a_killed_process_does_not_block(tmp_path, train, light):
    out = tmp_path / "s.zarr"
    lock_path(out).write_text(json.dumps({"pid": 999999, "command": "killed"}))
    sample_to_store(train, out, 200, recipe=light, device="cpu")
    assert open_store(out).attrs["posesynth"]["complete"] and not lock_path(out).exists()


def test_a_block_too_big_for_memory_is_refused_with_the_numbers(tmp_path, train):
    out = tmp_path / "v.zarr"
    result = CliRunner().invoke(main, ["sample", "--n", "100", "--views", "1000", "--out", str(out),
                                       "--checkpoint", str(train), "--device", "cpu"])
    message = one_line_error(result)
    assert "one block of sample.block_size = 4096 rows with camera.views = 1000 holds" in message
    assert "even for n = 100" in message and not out.exists()
