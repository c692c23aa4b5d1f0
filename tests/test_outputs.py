"""File outputs (issue 13): an existing output is refused without --overwrite, before any work,
and every file is written under a temporary name and renamed at the end, so a failed or killed
write never leaves a truncated file under the final name."""

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from posesynth.cli import main
from posesynth.outputs import OutputError, atomic_output, check_output
from test_sampling import sample_store, training_store

DETECTIONS = Path(__file__).parent / "detections" / "h36m17.npz"


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return sample_store(tmp_path_factory)


def refused(result, path) -> None:
    """The command stopped with ``error: <path> already exists; pass --overwrite ...``."""
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output == f"error: {path} already exists; pass --overwrite to replace it\n"


def existing(path: Path) -> Path:
    path.write_bytes(b"precious")
    return path


# ---------------------------------------------------------------------------- the helpers
def test_check_output_refuses_an_existing_file_unless_overwrite(tmp_path):
    path = existing(tmp_path / "a.npz")
    with pytest.raises(OutputError, match=r"a.npz already exists; pass --overwrite to replace it"):
        check_output(path)
    assert check_output(path, overwrite=True) == path


def test_check_output_refuses_a_folder_in_the_way_of_a_regular_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"cannot write in .*file/sub: .*file is a file, not a folder"):
        check_output(tmp_path / "file" / "sub" / "a.npz")


def test_atomic_output_replaces_the_file_only_when_the_write_finished(tmp_path):
    path = existing(tmp_path / "a.npz")
    with atomic_output(path) as tmp:
        assert tmp.parent == path.parent and tmp.name.startswith(".a.") and tmp.suffix == ".npz"
        np.savez(tmp, x=np.arange(3))
        assert path.read_bytes() == b"precious"  # not yet visible
    assert np.load(path)["x"].tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = existing(tmp_path / "a.npz")
    with pytest.raises(RuntimeError, match="mid-write"):
        with atomic_output(path) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("mid-write")
    assert path.read_bytes() == b"precious" and sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]


def test_an_os_error_while_writing_is_an_output_error_naming_the_file(tmp_path):
    with pytest.raises(OutputError, match=r"cannot write .*a.npz: it is a folder"):
        with atomic_output(tmp_path / "a.npz") as tmp:
            tmp.mkdir()
            tmp.open("w")


# ---------------------------------------------------------------------------- every command
@pytest.mark.parametrize("fmt", ["npz", "h5"])
def test_export_refuses_an_existing_file_and_replaces_it_with_overwrite(tmp_path, samples, fmt):
    out = existing(tmp_path / f"e.{fmt}")
    args = ["export", str(samples), "--format", fmt, "--out", str(out)]
    refused(CliRunner().invoke(main, args), out)
    assert out.read_bytes() == b"precious"
    assert CliRunner().invoke(main, args + ["--overwrite"]).exit_code == 0
    assert out.stat().st_size > 100_000


def test_videopose3d_export_refuses_existing_files_before_writing_either(tmp_path, samples):
    out = tmp_path / "vp3d"
    out.mkdir()
    second = existing(out / "data_2d_samples_h36m17.npz")
    refused(CliRunner().invoke(main, ["export", str(samples), "--format", "videopose3d", "--out", str(out),
                                      "--name", "samples"]), second)
    assert sorted(p.name for p in out.iterdir()) == ["data_2d_samples_h36m17.npz"]


def test_lift_train_refuses_an_existing_lifter_before_training(tmp_path):
    out = existing(tmp_path / "l.pt")
    refused(CliRunner().invoke(main, ["lift", "train", "--data", str(tmp_path / "nowhere.zarr"), "--out", str(out)]),
            out)


def test_lift_predict_refuses_an_existing_output_before_loading_anything(tmp_path):
    out = existing(tmp_path / "p.npz")
    refused(CliRunner().invoke(main, ["lift", "predict", str(tmp_path / "none.pt"), "--keypoints", str(DETECTIONS),
                                      "--out", str(out)]), out)


def test_sample_refuses_to_write_over_the_training_store_it_replays(tmp_path, tmp_path_factory):
    store = tmp_path / "T.zarr"
    shutil.copytree(training_store(tmp_path_factory), store)
    before = sorted(store.rglob("*"))
    result = CliRunner().invoke(main, ["sample", "--n", "10", "--checkpoint", str(store), "--out", str(store),
                                       "--overwrite"])
    assert result.exit_code == 1, result.output
    assert result.output == (f"error: --out {store} and --checkpoint {store} are the same path: writing --out "
                             "would replace that input; give another --out\n")
    assert sorted(store.rglob("*")) == before


def test_lift_predict_refuses_to_write_over_its_keypoints_file(tmp_path):
    keypoints = tmp_path / "k.npz"
    shutil.copy(DETECTIONS, keypoints)
    result = CliRunner().invoke(main, ["lift", "predict", str(tmp_path / "none.pt"), "--keypoints", str(keypoints),
                                       "--out", str(tmp_path / "." / "k.npz"), "--overwrite"])
    assert result.exit_code == 1 and f"and --keypoints {keypoints} are the same path" in result.output, result.output
    assert keypoints.read_bytes() == DETECTIONS.read_bytes()


def test_render_refuses_an_existing_picture_before_drawing(tmp_path, samples):
    out = existing(tmp_path / "g.png")
    refused(CliRunner().invoke(main, ["render", str(samples), "--out", str(out)]), out)


def test_export_mesh_refuses_an_existing_mesh(tmp_path, samples):
    out = existing(tmp_path / "m.obj")
    refused(CliRunner().invoke(main, ["export-mesh", str(samples), "--index", "0", "--out", str(out)]), out)


@pytest.mark.parametrize("command", [
    ["render", "{store}", "--out", "{out}"],
    ["export", "{store}", "--format", "npz", "--out", "{out}"],
    ["lift", "predict", "none.pt", "--keypoints", str(DETECTIONS), "--out", "{out}"],
])
def test_an_output_under_a_regular_file_is_a_one_line_error(tmp_path, samples, command):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    args = [a.format(store=samples, out=blocker / "sub" / "x.png") for a in command]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert result.output == f"error: cannot write in {blocker / 'sub'}: {blocker} is a file, not a folder\n"


_SLOW_EXPORT = """
import sys, time
from pathlib import Path
import posesynth.export as export
import posesynth.export.arrays as arrays

blocks = arrays.row_blocks
class Slow(list):  # the row blocks, handed out slowly, saying when the file is half written
    def __iter__(self):
        for i, rows in enumerate(list.__iter__(self)):
            if i == 1:
                Path(sys.argv[3]).touch()
            time.sleep(0.5)
            yield rows
def slow(arr):
    return Slow(blocks(arr))
arrays.row_blocks = slow
export.export_store(sys.argv[1], "npz", sys.argv[2])
"""


def test_an_export_killed_mid_write_leaves_nothing_under_the_final_name(tmp_path, samples):
    out, started = tmp_path / "e.npz", tmp_path / "started"
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_EXPORT, str(samples), str(out), str(started)])
    deadline = time.monotonic() + 120
    while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the export finished before it could be killed"
    assert not out.exists()
    left = [p.name for p in tmp_path.iterdir() if p.name != "started"]
    assert len(left) == 1 and left[0].startswith(".e.") and left[0].endswith(".partial.npz")
