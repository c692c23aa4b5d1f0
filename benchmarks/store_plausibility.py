"""How plausible the poses of a sample store are, judged by each checkpoint's joint limits.

    git show dc258c2:posesynth/assets/checkpoints/default.pt > /tmp/default_old.pt
    python benchmarks/store_plausibility.py posesynth/assets/checkpoints/default.pt /tmp/default_old.pt

For each checkpoint, ``posesynth sample``'s code (``sample_to_store``) writes a store of ``--n`` rows (default recipe, seed 0:
every augmentation the default store gets) into a temporary folder; its poses are then judged
by the plausibility checks (``posesynth.plausibility.implausible``) with each checkpoint's joint
limits in turn.  One JSON line per (store, limits) pair: the plausible fraction and the
fraction failing each check; and, for each store after the first, the fraction of its poses that
differ from the first store's (the same seed draws the same GAN poses, so only the augmentation
can differ).  Session 20 used it to show that the checkpoint's old limits (taken from every
training pose, retargeting artefacts included) had let mutation put 7% of the default store
outside the ranges of the clean training poses.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
import zarr

from posesynth.gan.checkpoint import load_checkpoint
from posesynth.plausibility import CHECKS, implausible
from posesynth.rotations import axis_angle_to_matrix
from posesynth.sampling.run import sample_to_store
from posesynth.stores.samples import smpl_path


def sampled_rotmats(checkpoint: Path, n: int, folder: Path) -> torch.Tensor:
    """The poses (n, 24, 3, 3) of the default store ``posesynth sample`` makes from ``checkpoint``."""
    out = folder / f"{checkpoint.stem}-{len(list(folder.iterdir()))}.zarr"
    sample_to_store(checkpoint, out, n, seed=0)
    group = zarr.open_group(str(out), mode="r")
    aa = np.concatenate([group[smpl_path("global_orient")][:], group[smpl_path("body_pose")][:]], axis=1)
    return axis_angle_to_matrix(torch.from_numpy(aa).double().reshape(n, 24, 3))


def judged(rotmats: torch.Tensor, limits) -> dict[str, float]:
    """The plausible fraction of ``rotmats`` and the fraction failing each check."""
    fails = implausible(rotmats, limits)
    return {"plausible": round(1.0 - fails["any"].double().mean().item(), 4),
            **{c: round(fails[c].double().mean().item(), 4) for c in CHECKS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path, help="GAN checkpoints (.pt) with joint limits")
    parser.add_argument("--n", type=int, default=40960, help="rows per store (default: 40960)")
    args = parser.parse_args()
    limits = {str(c): load_checkpoint(c).joint_limits for c in args.checkpoints}
    if missing := [c for c, lim in limits.items() if lim is None]:
        parser.error(f"{', '.join(missing)}: no joint limits in the checkpoint")
    with tempfile.TemporaryDirectory() as tmp:
        stores = {str(c): sampled_rotmats(c, args.n, Path(tmp)) for c in args.checkpoints}
    first = next(iter(stores.values()))
    for store, rotmats in stores.items():
        differ = (rotmats - first).abs().amax((1, 2, 3)) > 1e-6
        for by, lim in limits.items():
            print(json.dumps({"store_of": store, "limits_of": by, "n": args.n, **judged(rotmats, lim),
                              "differ_from_first_store": round(differ.double().mean().item(), 4)}))


if __name__ == "__main__":
    main()
