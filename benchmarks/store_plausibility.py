"""How plausible the poses of a sample store are, judged by each checkpoint's joint limits.

    git show dc258c2:posesynth/assets/checkpoints/default.pt > /tmp/default_old.pt
    python benchmarks/store_plausibility.py posesynth/assets/checkpoints/default.pt /tmp/default_old.pt
    python benchmarks/store_plausibility.py ... --set augment.mirror=0 augment.wide_bodies=0 \
        augment.tilt=0 augment.crossover=0           # mutation alone

For each checkpoint, ``posesynth sample``'s code (``sample_to_store``) writes two stores of ``--n``
rows (seed 0) into a temporary folder: one with the sampling recipe (the default one, with the
``--set`` overrides) and one with every augmentation of the pool off (``pool_augmentations_off``).
Both draw the same GAN poses (the pose and augmentation streams are separate), so the rows
that differ between them are the ones the augmentation changed.  Each store's poses are judged by
the plausibility checks (``posesynth.plausibility.implausible``) with each checkpoint's joint
limits in turn.  One JSON line per (store, limits) pair: the plausible fraction and the fraction
failing each check; for the augmented stores, the share of rows the augmentation changed and the
joints changed in each of them, and the share of rows differing from the first checkpoint's
augmented store.  It shows (docs/results.md, *Joint limits from clean poses*) that the checkpoint's old limits (taken from every
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

from posesynth.augment import pool_augmentations_off
from posesynth.gan.checkpoint import load_checkpoint
from posesynth.plausibility import CHECKS, implausible
from posesynth.rotations import axis_angle_to_matrix
from posesynth.sample_recipe import resolve_sample_recipe
from posesynth.sampling.run import sample_to_store
from posesynth.stores.samples import smpl_path


def sampled_rotmats(checkpoint: Path, n: int, overrides: list[str], folder: Path) -> torch.Tensor:
    """The poses (n, 24, 3, 3) of the store ``posesynth sample --set OVERRIDES`` makes from ``checkpoint``."""
    out = folder / f"{checkpoint.stem}-{len(list(folder.iterdir()))}.zarr"
    sample_to_store(checkpoint, out, n, seed=0, recipe=resolve_sample_recipe(None, overrides))
    group = zarr.open_group(str(out), mode="r")
    aa = np.concatenate([group[smpl_path("global_orient")][:], group[smpl_path("body_pose")][:]], axis=1)
    return axis_angle_to_matrix(torch.from_numpy(aa).double().reshape(n, 24, 3))


def judged(rotmats: torch.Tensor, limits) -> dict[str, float]:
    """The plausible fraction of ``rotmats`` and the fraction failing each check."""
    fails = implausible(rotmats, limits)
    return {"plausible": round(1.0 - fails["any"].double().mean().item(), 4),
            **{c: round(fails[c].double().mean().item(), 4) for c in CHECKS}}


def changed_joints(rotmats: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """(n, 24) booleans: which joints of each pose differ from ``reference``'s."""
    return (rotmats - reference).abs().amax((2, 3)) > 1e-6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path, help="GAN checkpoints (.pt) with joint limits")
    parser.add_argument("--n", type=int, default=40960, help="rows per store (default: 40960)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="sampling-recipe overrides, as posesynth sample --set takes them")
    args = parser.parse_args()
    limits = {str(c): load_checkpoint(c).joint_limits for c in args.checkpoints}
    if missing := [c for c, lim in limits.items() if lim is None]:
        parser.error(f"{', '.join(missing)}: no joint limits in the checkpoint")
    plain = pool_augmentations_off()
    with tempfile.TemporaryDirectory() as tmp:
        stores = {str(c): (sampled_rotmats(c, args.n, args.set, Path(tmp)),
                           sampled_rotmats(c, args.n, plain, Path(tmp))) for c in args.checkpoints}
    first = next(iter(stores.values()))[0]
    for store, (augmented, unaugmented) in stores.items():
        joints = changed_joints(augmented, unaugmented)
        changed = joints.any(1)
        effect = {"changed_by_augmentation": round(changed.double().mean().item(), 4),
                  "joints_changed_per_changed_row": round(joints[changed].sum(1).double().mean().item(), 1),
                  "differ_from_first_store": round(changed_joints(augmented, first).any(1).double().mean().item(), 4)}
        for by, lim in limits.items():
            for kind, rotmats, extra in (("augmented", augmented, effect), ("unaugmented", unaugmented, {})):
                print(json.dumps({"store_of": store, "recipe": kind, "set": args.set if kind == "augmented" else plain,
                                  "limits_of": by, "n": args.n, **judged(rotmats, lim), **extra}), flush=True)


if __name__ == "__main__":
    main()
