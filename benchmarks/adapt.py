"""The adaptation benchmark: does ``posesynth adapt`` close the gap to a target domain known only by its 2D?

    posesynth prepare ../shared/data/mocap --out train.zarr
    python benchmarks/adapt.py --data train.zarr --downstream runs/downstream --out runs/adapt

On each cross-source fold of the downstream benchmark (``benchmarks/downstream.py``: its fold
stores and fold GANs are reused, and made there if missing), the target domain is the other
source seen through a fixed, seeded camera set that ``adapt`` never sees (``--target-cameras``,
default ``surveillance``: high, far, looking down 20-50 degrees, unlike the default ``h36m``):

    target 2D     the other source's *training* files' poses through the target cameras, 2D only
                  (h36m17 pixels with K: what a team's detector would give)
    adapted       the fold's GAN adapted to that 2D (``posesynth.adapt.adapt``, ``--adapt-recipe``,
                  ``--adapt-set``; with the fold GAN's training state, so its 3D discriminator joins
                  the fine-tuning, unless ``--no-critic``), sampled through its own adapted cameras
                  with the default sampling recipe (``--adapted-set`` overrides it)
    test          the other source's held-out (validation) files through the target cameras

and the same SimpleBaseline MLP lifter as downstream's (same config, steps, batch) is trained,
once per seed (``--seeds``, default 3), on

    unadapted     real source + the fold GAN through downstream's cameras (the default store:
                  downstream's "real + synthetic"; its stores are reused when it has them)
    adapted       real source + the adapted GAN through its adapted cameras
    oracle        the target's real 3D: its training files through the target cameras (another seed)
    target_cameras  (only with ``--diagnostics``) real source + the fold GAN through the target's
                  own cameras, which adapt never sees: what a perfect camera fit could give at best
    adapted_mixed (only with ``--diagnostics``) real source + the adapted checkpoint, half through
                  its adapted cameras, half through the broad ``in_the_wild`` preset

MPJPE (mm, root-relative camera-frame h36m17) on the test store, mean ± std over the seeds, and
the share of the unadapted -> oracle gap the adapted store closes; also the 2D Fréchet distances
``adapt`` measured (start, adapted cameras, adapted cameras and generator) and those of the
unadapted and adapted stores to the target (``posesynth.adapt.distance``).  Every result is
cached under ``--out`` with its lifter's weights and a record of what it was made of, as
downstream's are (a result whose test store was made otherwise since is tested again from its
weights; one whose lifter would be trained otherwise now is trained again); ``--report`` prints the
tables of the cached results.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import zarr

from downstream import (
    CROSS_FOLDS, PRESETS, _complete, _one_thread, add_size_options, benchmark_size, cache_record, cache_state,
    fold_gan, fold_store, lifter_weights, make_store, sample_recipe, save_result, train_and_test,
)
from posesynth.adapt.distance import store_distance
from posesynth.adapt.recipe import load_adapt_recipe
from posesynth.adapt.run import adapt
from posesynth.augment import pool_augmentations_off
from posesynth.gan.checkpoint import adapted_sampling, load_checkpoint, read_checkpoint_file
from posesynth.lifting.checkpoint import LifterConfig
from posesynth.pose_source import StorePoseSource
from posesynth.sample_recipe import resolve_sample_recipe
from posesynth.stores import samples
from posesynth.stores.samples import camera_path, keypoints_path

PLAIN = pool_augmentations_off()
ROWS = ("unadapted", "adapted", "oracle")
# --diagnostics: the fold GAN (its own bodies, default augmentation) through the target's own
# cameras, which adapt never sees: what a perfect camera fit could give at best; and the adapted
# checkpoint half through its own cameras, half through the broad in_the_wild preset
DIAGNOSTIC_ROWS = ("target_cameras", "adapted_mixed")
SEEDS = {"target_2d": 5000, "oracle": 6000, "test": 7000}


def target_file(store: Path, out: Path) -> Path:
    """The 2D only of a sample store (view 0): h36m17 pixels (N, 17, 2) with K (N, 3, 3)."""
    if out.exists():
        return out
    group = zarr.open_group(str(store), mode="r")
    pixels = group[keypoints_path("h36m17", "pixels")][:, 0]
    np.savez(out, keypoints=pixels, K=group[camera_path("K")][:, 0], layout="h36m17")
    return out


def adapted_checkpoint(gan: Path, target: Path, out: Path, args) -> Path:
    if not out.exists():
        t = time.perf_counter()
        state = gan.parent / "state.pt"
        result = adapt(gan, target, out, load_adapt_recipe(args.adapt_recipe, args.adapt_set), seed=0,
                       device=args.device, training_state=state if state.is_file() and not args.no_critic else None,
                       log=lambda m: print(f"    {m}", flush=True))
        print(f"  adapted {gan} in {time.perf_counter() - t:.0f} s: {result.frechet_2d}", flush=True)
    return out


def adapted_recipe(checkpoint: Path, overrides: list[str]):
    return resolve_sample_recipe(None, ['sample.keypoint_sets=["smpl24","h36m17"]', "sample.noise=false", *overrides],
                                 adapted_sampling(checkpoint))


def build_direction(name: str, args, size: dict) -> dict:
    """Every store of one direction: {"train": row -> [(store, weight)], "test": store, "target": file, "adapted": .pt}."""
    train_source, test_source = CROSS_FOLDS[name]
    fold_dir, d = args.downstream / "folds" / name, args.out / name
    d.mkdir(parents=True, exist_ok=True)
    store = fold_store(args.data, fold_dir / "train.zarr", train_source, test_source)
    gan = fold_gan(store, fold_dir / "gan", size["fold_gan_steps"], args.device)
    target_pool = fold_store(args.data, d / "target_pool.zarr", test_source, test_source)  # train: its training files
    target_recipe = sample_recipe(args.target_cameras, None, PLAIN)
    seen = StorePoseSource(target_pool, split="train")
    target = target_file(make_store(seen, d / "target_2d.zarr", args.target_n, SEEDS["target_2d"], target_recipe),
                         d / "target_2d.npz")
    adapted = adapted_checkpoint(gan, target, d / "adapted.pt", args)
    n = size["train_n"]
    real = [(make_store(StorePoseSource(store, split="train"), reused_store(args, name, f"real_{p}.zarr"), n, i,
                        sample_recipe(p, None, PLAIN)), 1.0 / len(PRESETS)) for i, p in enumerate(PRESETS)]
    unadapted = [(make_store(load_checkpoint(gan), reused_store(args, name, f"gan-default_{p}.zarr"), n, i,
                             sample_recipe(p, None, [])), 1.0 / len(PRESETS)) for i, p in enumerate(PRESETS)]
    adapted_store = make_store(load_checkpoint(adapted), d / "adapted.zarr", n * len(PRESETS), 0,
                               adapted_recipe(adapted, args.adapted_set))
    oracle = make_store(seen, d / "oracle.zarr", n * len(PRESETS), SEEDS["oracle"], target_recipe)
    train = {"unadapted": real + unadapted, "adapted": real + [(adapted_store, 1.0)], "oracle": [(oracle, 1.0)]}
    if args.diagnostics:
        gan_target = make_store(load_checkpoint(gan), d / "gan_target_cameras.zarr", n * len(PRESETS), 0,
                                sample_recipe(args.target_cameras, None, []))
        train["target_cameras"] = real + [(gan_target, 1.0)]
        adapted_wild = make_store(load_checkpoint(adapted), d / "adapted_in_the_wild.zarr", n * len(PRESETS), 1,
                                  sample_recipe("in_the_wild", None, []))
        train["adapted_mixed"] = real + [(adapted_store, 0.5), (adapted_wild, 0.5)]
    test = make_store(StorePoseSource(store, split="val"), d / "test.zarr", size["test_n"], SEEDS["test"],
                      target_recipe)
    return {"train": train, "test": test, "target": target, "adapted": adapted,
            "stores": {"unadapted": [s for s, _ in unadapted], "adapted": [adapted_store]}}


def reused_store(args, name: str, file: str) -> Path:
    """Downstream's store ``file`` of the fold when it has one (made with the same source, seed and
    recipe; at its own size), else the path of one here."""
    theirs = args.downstream / "stores" / name / file
    return theirs if _complete(theirs, samples.KIND) else args.out / name / file


def result_path(out: Path, name: str, row: str, seed: int) -> Path:
    return out / "results" / name / row / f"seed{seed}.json"


def run_lifters(directions: dict[str, dict], args, size: dict) -> None:
    jobs = []
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn"), initializer=_one_thread) as pool:
        for name, built in directions.items():
            for row in built["train"]:
                data = [(str(s), w) for s, w in built["train"][row]]
                tests = {"test": [str(built["test"])]}
                for seed in range(args.seeds):
                    path = result_path(args.out, name, row, seed)
                    config = LifterConfig(model="mlp", seed=seed, **size["lifter"])
                    record = cache_record(config, data, tests)
                    state = cache_state(path, record)
                    if state != "current":
                        jobs.append((path, name, row, seed, record, pool.submit(
                            train_and_test, config, data, tests, None, None, lifter_weights(path, state))))
        for path, name, row, seed, record, job in jobs:
            result = job.result()
            save_result(path, result, record)
            print(f"  {name} {row} seed {seed}: {result['test']:.1f} mm", flush=True)


def distances(name: str, built: dict) -> dict:
    """The 2D Fréchet distances to the target: adapt's own, and the unadapted and adapted stores'."""
    record = read_checkpoint_file(built["adapted"])["adapted"]
    stores = {row: float(np.mean([store_distance(s, built["target"])["frechet_2d"] for s in paths]))
              for row, paths in built["stores"].items()}
    return {"adapt": record["frechet_2d"], "stores": stores, "camera": record["camera"]}


def format_direction(name: str, out: Path, frechet: dict | None) -> str:
    cells = {row: [json.loads(p.read_text())["test"] for p in sorted((out / "results" / name / row).glob("seed*.json"))]
             for row in ROWS + DIAGNOSTIC_ROWS}
    lines = [f"### {name} (target cameras never seen by adapt)", "", "| training data | MPJPE (mm) |", "|---|---|"]
    for row in ROWS + tuple(r for r in DIAGNOSTIC_ROWS if cells[r]):
        v = cells[row]
        lines.append(f"| {row} | " + (f"{np.mean(v):.1f} ± {np.std(v):.1f} ({len(v)} seeds)" if v else "not run") + " |")
    if all(cells[r] for r in ROWS):
        u, a, o = (np.mean(cells[r]) for r in ROWS)
        lines.append(f"\ngap closed: {100 * (u - a) / (u - o):.0f}% of unadapted -> oracle" if o < u else
                     "\nno gap to close: the oracle is not better than unadapted")
    if frechet:
        f = frechet["adapt"]
        lines.append(f"\n2D Fréchet distance (adapt's measure): start {f['start']:.4g}, aligned cameras and bodies "
                     f"{f['aligned']:.4g}, and generator {f['adapted']:.4g}; stores: "
                     + ", ".join(f"{k} {v:.4g}" for k, v in frechet["stores"].items()))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("train.zarr"), help="prepare store (default split)")
    parser.add_argument("--downstream", type=Path, default=Path("runs/downstream"),
                        help="downstream.py's --out: its fold stores, fold GANs and real stores are reused")
    parser.add_argument("--out", type=Path, default=Path("runs/adapt"))
    parser.add_argument("--folds", default=",".join(CROSS_FOLDS))
    parser.add_argument("--target-cameras", default="surveillance", help="camera preset of the target domain")
    parser.add_argument("--target-n", type=int, default=20_000, help="target 2D poses")
    parser.add_argument("--adapt-recipe", type=Path, help="adaptation recipe (default: adapt_default)")
    parser.add_argument("--adapt-set", action="append", default=[], metavar="KEY=VALUE",
                        help="override of the adaptation recipe, e.g. finetune.steps=1000 (repeatable)")
    parser.add_argument("--adapted-set", action="append", default=[], metavar="KEY=VALUE",
                        help="override of the adapted store's sampling recipe, e.g. augment.tilt=0 (repeatable)")
    parser.add_argument("--no-critic", action="store_true",
                        help="adapt without the fold GAN's 3D discriminator (its training state)")
    parser.add_argument("--diagnostics", action="store_true",
                        help="also the diagnostic rows: the fold GAN through the target's own cameras (a perfect "
                             "camera fit), and the adapted checkpoint half through the in_the_wild preset")
    parser.add_argument("--device", default="cpu")
    add_size_options(parser)
    args = parser.parse_args()
    size = benchmark_size(args)
    names = args.folds.split(",")
    frechet: dict[str, dict] = {}
    if not args.report:
        start = time.perf_counter()
        directions = {name: build_direction(name, args, size) for name in names}
        run_lifters(directions, args, size)
        frechet = {name: distances(name, built) for name, built in directions.items()}
        (args.out / "frechet.json").write_text(json.dumps(frechet, indent=1))
        print(f"done in {(time.perf_counter() - start) / 60:.1f} min", flush=True)
    elif (args.out / "frechet.json").exists():
        frechet = json.loads((args.out / "frechet.json").read_text())
    tables = "\n\n".join(format_direction(name, args.out, frechet.get(name)) for name in names)
    print(tables)
    (args.out / "adapt.md").write_text(tables + "\n")


if __name__ == "__main__":
    main()
