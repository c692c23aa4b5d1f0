"""The downstream benchmark: does posesynth data make a 2D->3D lifter better on unseen poses and people?

    posesynth prepare ../shared/data/mocap --out train.zarr      # the default split (recipes/split_default.toml)
    python benchmarks/downstream.py --data train.zarr --out runs/downstream

The same SimpleBaseline MLP lifter (``posesynth.lifting``, same config, seed and number of steps)
is trained on four sets, every pose seen through random cameras of two presets (Human3.6M-like
and in-the-wild, half each):

    (a) real       the training split's poses (their own fitted bodies)
    (b) synthetic  posesynth samples of the GAN checkpoint (default: the shipped one)
    (c) real + synthetic, half each
    (d) real + recombination, half each: EvoSkeleton-style crossover and mutation of the
        training poses (``posesynth.recombination``), bodies from the prior as the GAN's

and tested on the store's validation split (whole files, one whole actor and whole classes the
GAN never saw: the checkpoint's recorded training files are checked against it) through a
fixed, seeded camera set from both presets.  Errors are MPJPE and PA-MPJPE in mm of root-relative
camera-frame h36m17 keypoints, overall and per category: unseen actor, unseen class (of seen
actors), unseen file (seen actor and class), per camera preset, and in-distribution (training
poses through new cameras).  Writes ``downstream.json`` and ``downstream.png`` to ``--out`` and
prints a Markdown table.

It also trains the cGAN lifter on (c)'s data and reports its z = 0 error, best-of-5 and mean-of-5
errors and how far its 3D, placed in the camera, reprojects from the input 2D (pixels).

``--size default`` runs in under 30 minutes on 2 CPU cores; ``--size large`` (more samples and
steps, a wider network, bigger batches) is meant for a GPU.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from posesynth.gan.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint
from posesynth.gan.pose_data import load_training_poses
from posesynth.lifting.checkpoint import LifterConfig, save_lifter
from posesynth.lifting.evaluate import lift_errors, summarise
from posesynth.lifting.train import train_lifter
from posesynth.pose_source import StorePoseSource
from posesynth.recombination import RecombinationPoseSource
from posesynth.sample_recipe import resolve_sample_recipe
from posesynth.sampling import resolve_device, sample_to_store
from posesynth.store import held_out_categories, open_store

PRESETS = ("h36m", "in_the_wild")
SIZES = {  # samples per preset for each training source, test samples per preset, lifter settings
    "default": {"train_n": 100_000, "test_n": 16_384, "cgan_steps": 3000,
                "lifter": {"steps": 10_000, "batch_size": 256, "width": 512}},
    "large": {"train_n": 1_000_000, "test_n": 65_536, "cgan_steps": 50_000,
              "lifter": {"steps": 100_000, "batch_size": 1024, "width": 1024}},
}
TRAINING_SETS = {"a": ("real", {"real": 1.0}), "b": ("synthetic", {"gan": 1.0}),
                 "c": ("real + synthetic", {"real": 1.0, "gan": 1.0}),
                 "d": ("real + recombination", {"real": 1.0, "recombination": 1.0})}
CATEGORIES = ("unseen actor", "unseen class", "unseen file", "h36m cameras", "in_the_wild cameras")


def recipe_for(preset: str) -> dict:
    return resolve_sample_recipe(None, [f"camera.preset={preset}", 'sample.keypoint_sets=["smpl24","h36m17"]',
                                        "sample.noise=true"])


def make_store(source, path: Path, n: int, seed: int, preset: str, device: str) -> Path:
    summary = sample_to_store(source, path, n, seed, recipe_for(preset), device=device, overwrite=True)
    print(f"  {path.name}: {n:,} samples in {summary.seconds:.1f} s", flush=True)
    return path


def joined_errors(lifter, stores: dict[str, Path]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``lift_errors`` (5 hypotheses for a cGAN) on every store, concatenated in the stores'
    order, and each example's store key."""
    errors = {key: lift_errors(lifter, path, hypotheses=5) for key, path in stores.items()}
    joined = {k: np.concatenate([e[k] for e in errors.values()]) for k in next(iter(errors.values()))}
    return joined, np.concatenate([np.full(len(e["label"]), key) for key, e in errors.items()])


def evaluate_all(lifter, tests: dict[str, Path], in_dist: dict[str, Path], categories: list[str]) -> dict:
    joined, store = joined_errors(lifter, tests)
    category = np.asarray(categories)[joined["label"]]
    result = {"overall": summarise(joined)}
    for name in CATEGORIES[:3]:
        result[name] = summarise(joined, category == name)
    for p in PRESETS:
        result[f"{p} cameras"] = summarise(joined, store == p)
    result["in-distribution"] = summarise(joined_errors(lifter, in_dist)[0])
    return result


def format_table(results: dict[str, dict]) -> str:
    columns = ["overall", "PA overall", *CATEGORIES, "in-distribution"]
    lines = ["| training data | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for key, r in results.items():
        cells = [r["overall"]["mpjpe_mm"], r["overall"]["pa_mpjpe_mm"]] + [r[c]["mpjpe_mm"] for c in columns[2:]]
        lines.append(f"| ({key}) {TRAINING_SETS[key][0]} | " + " | ".join(f"{v:.1f}" for v in cells) + " |")
    return "\n".join(lines)


def plot(results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = ["overall", *CATEGORIES, "in-distribution"]
    fig, ax = plt.subplots(figsize=(11, 4))
    width = 0.8 / len(results)
    for i, (key, r) in enumerate(results.items()):
        x = np.arange(len(groups)) + i * width
        ax.bar(x, [r[g]["mpjpe_mm"] for g in groups], width, label=f"({key}) {TRAINING_SETS[key][0]}")
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, groups)
    ax.set_ylabel("MPJPE (mm)")
    ax.set_title("Same MLP lifter, same steps: held-out validation split (lower is better)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_cgan(steps: int, args, size: dict, train_stores: dict, tests: dict[str, Path], device: str) -> dict:
    """The cGAN lifter on (c)'s data: MPJPE of its z = 0 prediction, best-of-5, mean-of-5 and the
    reprojection error (px) on the held-out test stores."""
    config = LifterConfig(model="cgan", steps=steps, batch_size=size["lifter"]["batch_size"],
                          width=size["lifter"]["width"], dropout=0.1)
    data = [(train_stores[src][p], 0.5) for src in ("real", "gan") for p in PRESETS]
    t = time.perf_counter()
    print(f"cGAN lifter on (c)'s data: training {config.steps} steps", flush=True)
    lifter = train_lifter(config, data, device=device, progress=False)
    save_lifter(args.out / "lifter_c_cgan.pt", lifter)
    result = summarise(joined_errors(lifter, tests)[0])
    print(f"  {time.perf_counter() - t:.0f} s; " + ", ".join(f"{k} {v:.1f}" for k, v in result.items() if k != "n"))
    return {"config": asdict(config), "held_out": result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("train.zarr"), help="prepare store (default split)")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--out", type=Path, default=Path("runs/downstream"))
    parser.add_argument("--size", choices=sorted(SIZES), default="default")
    parser.add_argument("--steps", type=int, help="override the lifter's steps")
    parser.add_argument("--train-n", type=int, help="override the training samples per source and preset")
    parser.add_argument("--test-n", type=int, help="override the test samples per preset")
    parser.add_argument("--sets", default="abcd", help="which training sets to run (default abcd)")
    parser.add_argument("--cgan-steps", type=int,
                        help="steps of the cGAN lifter trained on (c)'s data (default: the size's; 0 skips it)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    size = {**SIZES[args.size], **{k: v for k, v in (("train_n", args.train_n), ("test_n", args.test_n)) if v}}
    device = str(resolve_device(args.device))
    args.out.mkdir(parents=True, exist_ok=True)
    stores = args.out / "stores"
    gan = load_checkpoint(args.checkpoint)
    if not gan.training_files:
        print(f"warning: {args.checkpoint} does not record its training files: cannot check that the "
              f"validation split is unseen", flush=True)
    gan.check_unseen(list(load_training_poses(args.data, split="val").files), f"{args.data}'s validation split")
    group = open_store(args.data, kind="training")
    categories, rule = held_out_categories(group), group.attrs["split_rule"]
    print(f"validation split: {rule['val_subjects']} + classes {rule['val_contents']} + "
          f"{rule['val_fraction']:.0%} of files; making stores", flush=True)

    sources = {"real": StorePoseSource(args.data, split="train"), "gan": gan,
               "recombination": RecombinationPoseSource(args.data, split="train")}
    train_stores = {name: {p: make_store(src, stores / f"{name}_{p}.zarr", size["train_n"], i, p, device)
                           for i, p in enumerate(PRESETS)} for name, src in sources.items()}
    val_source = StorePoseSource(args.data, split="val", label_field="file")
    tests = {p: make_store(val_source, stores / f"test_val_{p}.zarr", size["test_n"], 1000 + i, p, device)
             for i, p in enumerate(PRESETS)}
    in_dist = {p: make_store(sources["real"], stores / f"test_train_{p}.zarr", size["test_n"] // 4, 2000 + i, p,
                             device) for i, p in enumerate(PRESETS)}

    config = LifterConfig(model="mlp", **{**size["lifter"], **({"steps": args.steps} if args.steps else {})})
    results: dict[str, dict] = {}
    for key in args.sets:
        name, mixture = TRAINING_SETS[key]
        data = [(train_stores[src][p], w / len(PRESETS)) for src, w in mixture.items() for p in PRESETS]
        t = time.perf_counter()
        print(f"({key}) {name}: training {config.steps} steps", flush=True)
        lifter = train_lifter(config, data, device=device, progress=False)
        save_lifter(args.out / f"lifter_{key}.pt", lifter)
        results[key] = evaluate_all(lifter, tests, in_dist, categories)
        print(f"  {time.perf_counter() - t:.0f} s; MPJPE {results[key]['overall']['mpjpe_mm']:.1f} mm", flush=True)

    table = format_table(results)
    print(table)
    cgan_steps = size["cgan_steps"] if args.cgan_steps is None else args.cgan_steps
    cgan = run_cgan(cgan_steps, args, size, train_stores, tests, device) if cgan_steps else None
    report = {"size": args.size, "lifter": asdict(config), "checkpoint": gan.identity, "data": str(args.data),
              "split_rule": {k: v for k, v in rule.items() if k != "held_out_files"},
              "train_samples_per_preset": size["train_n"], "test_samples_per_preset": size["test_n"],
              "seconds": time.perf_counter() - start, "results": results, "cgan": cgan}
    if "a" in results and "c" in results:
        a, c = results["a"]["overall"]["mpjpe_mm"], results["c"]["overall"]["mpjpe_mm"]
        report["c_vs_a_reduction"] = 1.0 - c / a
        print(f"(c) vs (a): {100 * (1 - c / a):.1f}% lower MPJPE (target: at least 25%)")
    if "c" in results and "d" in results:
        print(f"(c) vs (d): {results['c']['overall']['mpjpe_mm']:.1f} vs {results['d']['overall']['mpjpe_mm']:.1f} mm")
    (args.out / "downstream.json").write_text(json.dumps(report, indent=1))
    plot(results, args.out / "downstream.png")
    print(f"wrote {args.out / 'downstream.json'} and downstream.png in {report['seconds'] / 60:.1f} min")


if __name__ == "__main__":
    main()
