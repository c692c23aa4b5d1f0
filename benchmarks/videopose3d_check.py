"""VideoPose3D on posesynth's exports, end to end (needs a VideoPose3D checkout; not run by CI).

    python benchmarks/videopose3d_check.py /path/to/VideoPose3D [--store S.zarr | --n 4000] [--epochs 1]

1. Samples a store (``posesynth sample --n N``, the shipped checkpoint) unless ``--store`` is given.
2. ``--format h36m`` (2D sets h36m17 and coco17): checks the files against VideoPose3D's own code
   (its ``Human36mDataset`` loads the 3D; its ``world_to_camera``, ``project_to_2d`` and
   ``image_coordinates`` must give the exported 2D, as ``prepare_data_h36m.py`` would), then
   trains the *pristine* ``run.py -d h36m -k <name>_<set2d> -arc 1,1,1`` on each.
3. ``--format videopose3d`` (3D h36m17, 2D coco17): trains ``run.py`` with the loader of
   ``docs/videopose3d.md`` (taken from that page, so the page is what is tested) on the
   ``train`` / ``test`` subjects, then runs the pristine ``run.py -d custom`` on the ``custom``
   file with the checkpoint it made, and compares the predicted 3D with the store's.

Everything happens in ``--workdir`` (a temporary folder by default): the exports go to its
``data/``, ``run.py`` runs there, and the loader goes into a copy of the checkout's ``run.py`` and
``common/``.  The checkout itself is not touched.  VideoPose3D's output is printed as it runs.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "videopose3d.md"
NAME = "bench"
SETS_2D = ("h36m17", "coco17")  # the 2D sets of the h36m exports
RUN_PY_ANCHOR = "else:\n    raise KeyError('Invalid dataset')"


def run(cmd: list[str], cwd: Path) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, check=True)


def posesynth(*args: str) -> None:
    run([sys.executable, "-m", "posesynth.cli", *args], REPO)


def check_h36m_against_videopose3d(checkout: Path, data: Path) -> None:
    """VideoPose3D's loader keeps our 17 joints, and its camera code gives our h36m17 2D (it can
    load the 3D only once per process: ``Human36mDataset`` edits the module's skeleton)."""
    sys.path.insert(0, str(checkout))
    from common.camera import image_coordinates, project_to_2d, world_to_camera
    from common.h36m_dataset import Human36mDataset
    from common.utils import wrap

    dataset = Human36mDataset(str(data / "data_3d_h36m.npz"))  # removes the 15 static joints
    files = {s: np.load(data / f"data_2d_h36m_{NAME}_{s}.npz", allow_pickle=True)["positions_2d"].item()
             for s in SETS_2D}
    worst = 0.0
    for subject in dataset.subjects():
        for action, anim in dataset[subject].items():
            for v, cam in enumerate(anim["cameras"]):
                for ours in files.values():
                    assert ours[subject][action][v].shape == (len(anim["positions"]), 17, 2)
                x_cam = world_to_camera(anim["positions"], R=cam["orientation"], t=cam["translation"])
                theirs = image_coordinates(wrap(project_to_2d, x_cam, cam["intrinsic"], unsqueeze=True),
                                           w=cam["res_w"], h=cam["res_h"])  # as prepare_data_h36m.py
                worst = max(worst, float(np.abs(theirs - files["h36m17"][subject][action][v]).max()))
    print(f"h36m: subjects {list(dataset.subjects())}; VideoPose3D's loader keeps {dataset.skeleton().num_joints()} "
          f"joints; its projection of the exported 3D differs from the exported h36m17 2D by at most {worst:.2e} px",
          flush=True)


def install_loader(checkout: Path, copy: Path) -> None:
    """``copy``: the checkout's ``run.py`` and ``common/`` with docs/videopose3d.md's loader added."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    dataset_class = next(b for b in blocks if "class PosesynthDataset" in b)
    branch = next(b for b in blocks if "PosesynthDataset(dataset_path)" in b)
    shutil.copytree(checkout / "common", copy / "common", dirs_exist_ok=True)
    (copy / "common" / "posesynth_dataset.py").write_text(dataset_class, encoding="utf-8")
    source = (checkout / "run.py").read_text(encoding="utf-8")
    assert source.count(RUN_PY_ANCHOR) == 1, "run.py's dataset dispatch has changed"
    (copy / "run.py").write_text(source.replace(RUN_PY_ANCHOR, branch + RUN_PY_ANCHOR), encoding="utf-8")


def weights_only(checkpoint: Path) -> None:
    """Keep what ``--evaluate`` needs (``epoch``, ``lr``, ``model_pos``), as VideoPose3D's released
    checkpoints: ``run.py`` also saves ``model_traj: None``, which its ``--evaluate`` then fails to
    load, and a numpy ``random_state``, which torch >= 2.6 refuses to unpickle by default."""
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)  # our own file
    torch.save({k: state[k] for k in ("epoch", "lr", "model_pos")}, checkpoint)


def compare_custom_prediction(work: Path, store: Path, video: str) -> None:
    """MPJPE of the ``-d custom`` prediction of ``video`` against the store's camera-frame 3D."""
    import zarr

    from posesynth.stores.samples import keypoints_path

    subject, rest = video.split(".", 1)  # <subject>.<action>.view<v>; an action may hold dots
    action, view = rest.rsplit(".", 1)
    rows = np.load(work / "data" / f"data_3d_{NAME}.npz", allow_pickle=True)["sample_index"].item()[subject][action]
    truth = zarr.open_group(str(store), mode="r")[keypoints_path("h36m17", "camera")][:][rows, int(view[4:])]  # (T, 17, 3)
    truth = truth - truth[:, :1]
    pred = np.load(work / "pred.npy")
    mpjpe = np.linalg.norm(pred - truth, axis=-1).mean() * 1000
    print(f"-d custom {video}: {len(pred)} frames, MPJPE against the store's 3D {mpjpe:.1f} mm", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkout", type=Path, help="a VideoPose3D checkout (facebookresearch/VideoPose3D)")
    ap.add_argument("--store", type=Path, help="a sample store (default: sample one)")
    ap.add_argument("--n", type=int, default=4000, help="samples to draw without --store")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--workdir", type=Path, help="default: a temporary folder")
    args = ap.parse_args()
    checkout = args.checkout.resolve()
    work = (args.workdir or Path(tempfile.mkdtemp(prefix="videopose3d_check_"))).resolve()
    data = work / "data"
    store = args.store or work / f"{NAME}.zarr"
    if not args.store:
        posesynth("sample", "--n", str(args.n), "--out", str(store), "--seed", "0", "--device", "cpu", "--overwrite")
    common = ["--name", NAME, "--out", str(data), "--overwrite"]
    train = ["-arc", "1,1,1", "-e", str(args.epochs), "--checkpoint-frequency", "1"]

    for set_2d in SETS_2D:
        posesynth("export", str(store), "--format", "h36m", "--keypoint-set-2d", set_2d, *common)
    check_h36m_against_videopose3d(checkout, data)
    for set_2d in SETS_2D:
        run([sys.executable, str(checkout / "run.py"), "-d", "h36m", "-k", f"{NAME}_{set_2d}", *train,
             "-c", str(work / f"checkpoint_h36m_{set_2d}")], work)

    posesynth("export", str(store), "--format", "videopose3d", "--keypoint-set", "h36m17",
              "--keypoint-set-2d", "coco17", *common)
    install_loader(checkout, work / "VideoPose3D")
    ckpt = work / "checkpoint_videopose3d"
    run([sys.executable, str(work / "VideoPose3D" / "run.py"), "-d", NAME, "-k", "coco17", "-str", "train",
         "-ste", "test", *train, "-c", str(ckpt)], work)

    weights_only(ckpt / f"epoch_{args.epochs}.bin")
    video = f"test.{_first_test_action(data)}.view0"
    run([sys.executable, str(checkout / "run.py"), "-d", "custom", "-k", f"{NAME}_coco17", "-arc", "1,1,1",
         "-c", str(ckpt), "--evaluate", f"epoch_{args.epochs}.bin", "--render", "--viz-subject", video,
         "--viz-action", "custom", "--viz-camera", "0", "--viz-export", str(work / "pred.npy")], work)
    compare_custom_prediction(work, store, video)
    print(f"work folder: {work}")


def _first_test_action(data: Path) -> str:
    return next(iter(np.load(data / f"data_2d_{NAME}_coco17.npz", allow_pickle=True)["positions_2d"].item()["test"]))


if __name__ == "__main__":
    main()
