"""The downstream benchmark: does posesynth data make a 2D->3D lifter better on data unlike its pool?

    posesynth prepare ../shared/data/mocap --out train.zarr      # the default split (posesynth/recipes/split_default.toml)
    python benchmarks/downstream.py --data train.zarr --out runs/downstream

Folds (the field's cross-dataset test, made of the pool's two sources, plus the default split):

    split                 the default split: the shipped checkpoint; tested on the unseen actor, the
                          unseen classes and the unseen files of the validation split, on the same
                          validation poses tilted as whole bodies 30-120 degrees about a random
                          horizontal axis and put on the floor (off-upright: a stress test standing
                          in for lying and falling), and on training poses through new cameras
                          (in-distribution)
    bandai_namco>hdm05    GAN and lifters trained on Bandai Namco's training files only, tested on
    hdm05>bandai_namco    the other source's validation files (another rig, other people, other
                          actions); the fold's GAN is trained here with the default GAN recipe on a
                          shorter schedule (``--fold-gan-steps``); in-distribution: the fold's own
                          training poses through new cameras
    selection             for choosing a mechanism's settings without looking at any test side: the
                          default split's training files only, its validation the training classes
                          least like the others (``novel_classes``: per source, the two whose poses
                          lie furthest from every other class's), GAN as in the cross-source folds;
                          reported in a table of its own (``--folds selection``)

In every fold the same SimpleBaseline MLP lifter (``posesynth.lifting``: same config, steps,
batch and cameras) is trained, once per lifter seed (``--seeds``, default 3), on

    real               the fold's training poses on their own fitted bodies
    real + synthetic   half real, half samples of the fold's GAN through the sampling recipe under
                       test (default: ``posesynth/recipes/sample_default.toml``, i.e. the default store;
                       ``--recipe`` and ``--set`` change it, ``--variant`` names it)
    real + recombination  half real, half EvoSkeleton-style recombination of the fold's training
                       poses (``posesynth.recombination``), bodies from the fitted prior
    real + augmented real  (``--sets augmented``) half real, half the fold's training poses
                       themselves through the recipe under test: what its augmentations give
                       without the GAN

every pose seen through random cameras of two presets (Human3.6M-like and in-the-wild, half each),
and tested through a fixed, seeded camera set of both presets.  Errors are MPJPE in mm of
root-relative camera-frame h36m17 keypoints; every cell is the mean over the lifter seeds and
their standard deviation.  Nothing is selected or tuned on a test side.

Results are cached per (fold, training set, variant, seed) under ``--out``, each with its
lifter's weights (``seedN.pt``) and a record of what it was made of (the lifter's config, how its
training and test stores were made), so variants of the synthetic recipe (an ablation) re-train
only their own lifters, a result whose test stores were made otherwise since (a changed test
recipe) is tested again from its weights, and one whose lifter would be trained otherwise now (other
steps, stores or recipe) is trained again; ``--hardness`` adds PoseAug-style
hardness feedback against a reference lifter trained on each fold's real stores; ``--synthetic-share``
sets the synthetic stores' share of a mixed lifter's samples (default half); ``--report`` prints the
tables of every variant found there: the categories, the unseen classes one by one, and the
selection fold's table when it was run.  Writes
``downstream.json`` and the Markdown tables.  ``--size default``
runs in about 56 minutes on 2 idle CPU cores (fold GANs 9, stores 1.5, 27 lifters 45, trained two
at a time on one thread each); a variant of the synthetic recipe alone (9 lifters) in about 15;
the selection fold in about 20 with its real and default rows (GAN 7.5), 7.5 per variant.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
import zarr

from posesynth.augment import pool_augmentations_off
from posesynth.gan.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint, read_checkpoint_file
from posesynth.lifting.checkpoint import LifterConfig
from posesynth.pose_source import StorePoseSource, check_unseen
from posesynth.recombination import RecombinationPoseSource
from posesynth.sample_recipe import DEFAULT_SAMPLE_RECIPE, SampleRecipe, resolve_sample_recipe
from posesynth.sampling import sample_to_store
from posesynth.store import StoreError, open_store
from posesynth.stores import samples, training
from posesynth.stores.training import HELD_OUT, held_out_categories
from posesynth.stores.training_poses import load_training_poses

PRESETS = ("h36m", "in_the_wild")
SIZES = {  # samples per preset for each training source, test samples per preset, lifter settings
    "default": {"train_n": 100_000, "test_n": 16_384, "fold_gan_steps": 6000,
                "lifter": {"steps": 5000, "batch_size": 256, "width": 512}},
    "large": {"train_n": 1_000_000, "test_n": 65_536, "fold_gan_steps": 36_000,
              "lifter": {"steps": 100_000, "batch_size": 1024, "width": 1024}},
}
SETS = {"real": {"real": 1.0}, "synthetic": {"real": 0.5, "gan": 0.5},  # the synthetic share: --synthetic-share
        "augmented": {"real": 0.5, "augmented": 0.5}, "recombination": {"real": 0.5, "recombination": 0.5}}
RECIPE_SOURCES = ("gan", "augmented")  # sampled through the recipe under test (--recipe, --set, --variant)
DEFAULT_SYNTHETIC_SHARE = SETS["synthetic"]["gan"]
SET_NAMES = {"real": "real", "synthetic": "real + synthetic", "augmented": "real + augmented real",
             "recombination": "real + recombination"}
CROSS_FOLDS = {"bandai_namco>hdm05": ("bandai_namco", "hdm05"), "hdm05>bandai_namco": ("hdm05", "bandai_namco")}
SELECTION = "selection"
NOVEL_PER_SOURCE = 2  # the selection fold's held-out classes per source
# The validation poses tilted and put on the floor, nothing else: every pool augmentation off but
# tilt (until session 17 the others were left at the default recipe's values, so the test set
# changed whenever the default recipe did; docs/results.md).
OFF_UPRIGHT = [*pool_augmentations_off(), "augment.tilt=1.0", "augment.tilt_deg=[30.0, 120.0]"]
COLUMNS = ("bandai_namco>hdm05", "hdm05>bandai_namco", *HELD_OUT, "off-upright", "in-distribution")
SELECTION_COLUMNS = {"novel classes": "val", "in-distribution": "in-distribution"}  # column -> result key
CACHE_RECORD = "made_of"  # a cached result's record of its lifter's training and test stores (``cache_record``)


# ---------------------------------------------------------------------------- folds
def fold_store(data: Path, out: Path, train_source: str, test_source: str) -> Path:
    """A copy of the training store ``data`` whose ``train`` split is ``train_source``'s training
    files and whose ``val`` split is ``test_source``'s validation files (the rest: ``unused``)."""
    if _complete(out, training.KIND):
        return out

    def split(group: zarr.Group, train: np.ndarray, val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sources = list(group.attrs["labels"]["source"])
        source = group[training.label_path("source")][:]
        return (source == sources.index(train_source)) & train, (source == sources.index(test_source)) & val

    group = _resplit_copy(data, out, split)
    group.attrs["fold"] = {"train_source": train_source, "test_source": test_source}
    return out


def _resplit_copy(data: Path, out: Path, split: Callable[[zarr.Group, np.ndarray, np.ndarray],
                                                          tuple[np.ndarray, np.ndarray]]) -> zarr.Group:
    """A copy at ``out`` of the training store ``data`` (its group, open for writing) whose new
    ``train`` and ``val`` rows are what ``split(group, train, val)`` says from the old ones (per row
    bool); every other row is in a third split, ``unused``."""
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(data, out)
    group = zarr.open_group(out, mode="r+")
    splits = list(group.attrs["splits"])
    old = group[training.SPLIT_PATH][:]
    train, val = splits.index("train"), splits.index("val")
    new_train, new_val = split(group, old == train, old == val)
    new = np.full_like(old, 2)
    new[new_train], new[new_val] = train, val
    group[training.SPLIT_PATH][:] = new
    group.attrs["splits"] = [*splits[:2], "unused"]
    return group


def novel_classes(data: Path, per_source: int = NOVEL_PER_SOURCE, frames: int = 300, seed: int = 0) -> list[str]:
    """The ``per_source`` training classes of each source of ``data`` whose poses are least like the
    other classes': the highest median, over ``frames`` of the class's training frames (drawn with
    ``seed``), of the MPJPE to the nearest training frame of another class (canonical joints on the
    mean body).  Training poses only: no validation pose decides it."""
    from posesynth.body_model import load_body_model
    from posesynth.metrics import canonical_joints, nearest_mpjpe

    poses = load_training_poses(data, "content", "train", "frame")
    body = load_body_model()
    joints = canonical_joints(poses.rotmats, body.rest_joints(torch.zeros(1, body.num_betas)).double()[0]).float()
    group = open_store(data, kind=training.KIND)
    source_of = dict(zip(training.file_labels(group, "content"), training.file_labels(group, "source")))
    g = torch.Generator().manual_seed(seed)
    distance: dict[str, dict[str, float]] = {}
    for k, name in enumerate(poses.label_names):
        mine = poses.labels == k
        if mine.any():
            query = joints[mine][torch.randperm(int(mine.sum()), generator=g)[:frames]]
            distance.setdefault(source_of[name], {})[name] = float(nearest_mpjpe(query, joints[~mine]).median())
    return sorted(c for d in distance.values() for c in sorted(d, key=d.get, reverse=True)[:per_source])


def selection_store(data: Path, out: Path) -> Path:
    """A copy of the training store ``data`` whose ``train`` split is its training files of every class
    but ``novel_classes``, whose ``val`` split is its training files of those (its validation files:
    ``unused``), and whose ``split_rule`` names them as the held-out classes."""
    if _complete(out, training.KIND):
        return out
    held_out = novel_classes(data)

    def split(group: zarr.Group, train: np.ndarray, val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        contents = list(group.attrs["labels"]["content"])
        novel = np.isin(group[training.label_path("content")][:], [contents.index(c) for c in held_out])
        return train & ~novel, train & novel

    group = _resplit_copy(data, out, split)
    group.attrs.update({"fold": {"novel_classes": held_out},
                        "split_rule": {**group.attrs["split_rule"], "val_subjects": [], "val_contents": held_out,
                                       "held_out_files": sorted(_val_files(out))}})
    print(f"  selection fold: {', '.join(held_out)} held out of the training files", flush=True)
    return out


def _complete(path: Path, kind: str) -> bool:
    try:
        open_store(path, kind=kind)
    except (StoreError, FileNotFoundError, ValueError):
        return False
    return True


def _made_as_asked(path: Path, n: int, seed: int, recipe: SampleRecipe) -> bool:
    """Whether ``path`` is a complete sample store of ``n`` rows written with ``seed`` and ``recipe``."""
    if not _complete(path, samples.KIND):
        return False
    attrs = open_store(path, kind=samples.KIND).attrs
    return (attrs["posesynth"]["num_samples"] == n and attrs["seed"] == seed
            and attrs["recipe"] == recipe.to_dict())


def fold_gan(store: Path, out: Path, steps: int, device: str) -> Path:
    """The fold's GAN: ``posesynth/recipes/gan_default.toml`` with ``steps`` steps on the fold's training
    split; an interrupted run (a checkpoint of fewer steps) is resumed from its state."""
    from posesynth.gan.recipe import load_train_recipe
    from posesynth.gan.train import Trainer

    checkpoint = out / "checkpoint.pt"
    if checkpoint.exists() and read_checkpoint_file(checkpoint)["step"] >= steps:
        return checkpoint
    recipe = load_train_recipe(None, [f"train.steps={steps}"])
    t = time.perf_counter()
    Trainer(recipe, store, out, device=device).run(progress=False)
    print(f"  GAN for {store.parent.name}: {steps} steps in {time.perf_counter() - t:.0f} s", flush=True)
    return checkpoint


# ---------------------------------------------------------------------------- stores
def sample_recipe(preset: str, base: Path | None, overrides: list[str]) -> SampleRecipe:
    return resolve_sample_recipe(base, [*overrides, f"camera.preset={preset}",
                                        'sample.keypoint_sets=["smpl24","h36m17"]', "sample.noise=false"])


def make_store(source, path: Path, n: int, seed: int, recipe: SampleRecipe) -> Path:
    """``path``: a sample store of ``n`` rows of ``source`` with ``seed`` and ``recipe``, written
    unless a complete one made so is there (one made otherwise, e.g. before a default of the
    recipe changed, is written again)."""
    if _made_as_asked(path, n, seed, recipe):
        return path
    summary = sample_to_store(source, path, n, seed, recipe, device="cpu", overwrite=True)
    print(f"  {path.parent.name}/{path.name}: {n:,} samples in {summary.seconds:.1f} s", flush=True)
    return path


def needed_sources(sets: list[str]) -> set[str]:
    """The training sources (``SETS``' keys' keys) that ``sets`` mix; the real one always (every
    mix has it)."""
    return {"real"} | {source for s in sets for source in SETS[s]}


# The augmented real stores' first seed: other draws of the real poses than the real stores'.
AUGMENTED_SEED = 100


@dataclass
class Fold:
    name: str
    store: Path
    checkpoint: Path | None  # the fold's GAN; None when no set needs it
    train: dict[str, dict[str, Path]] = field(default_factory=dict)  # source -> preset -> store
    tests: dict[str, list[Path]] = field(default_factory=dict)  # test group -> stores


def build_fold(fold: Fold, args, size: dict, variant: str, synthetic: list[str], plain: list[str]) -> None:
    """Every store of ``fold``: training stores of each source and preset, and the test stores."""
    d = args.out / "stores" / fold.name
    base = args.recipe
    real = StorePoseSource(fold.store, split="train")
    sources = {  # source -> (pose source, recipe file, overrides, store name, first seed)
        "real": lambda: (real, None, plain, "real", 0),
        "gan": lambda: (load_checkpoint(fold.checkpoint), base, synthetic, f"gan-{variant}", 0),
        "augmented": lambda: (real, base, synthetic, f"augmented-{variant}", AUGMENTED_SEED),
        "recombination": lambda: (RecombinationPoseSource(fold.store, split="train"), None, plain, "recombination", 0),
    }
    needed = needed_sources(args.sets.split(","))
    for key in [k for k in sources if k in needed]:
        src, recipe_file, overrides, name, seed = sources[key]()
        if key in RECIPE_SOURCES and args.hardness:
            lifter = reference_lifter(fold, args.out / "folds" / fold.name / "reference_lifter.pt", size)
            overrides = [*overrides, f"augment.hardness={args.hardness}", f'augment.hardness_lifter="{lifter}"']
        fold.train[key] = {p: make_store(src, d / f"{name}_{p}.zarr", size["train_n"], seed + i,
                                         sample_recipe(p, recipe_file, overrides)) for i, p in enumerate(PRESETS)}
    val = StorePoseSource(fold.store, split="val", label_field="file")
    fold.tests["val"] = [make_store(val, d / f"test_val_{p}.zarr", size["test_n"], 1000 + i,
                                    sample_recipe(p, None, plain)) for i, p in enumerate(PRESETS)]
    fold.tests["in-distribution"] = [make_store(real, d / f"test_train_{p}.zarr", size["test_n"] // 4, 2000 + i,
                                                sample_recipe(p, None, plain)) for i, p in enumerate(PRESETS)]
    if fold.name == "split":
        fold.tests["off-upright"] = [make_store(val, d / f"test_off_upright_{p}.zarr", size["test_n"] // 2,
                                                3000 + i, sample_recipe(p, None, OFF_UPRIGHT))
                                     for i, p in enumerate(PRESETS)]


def reference_lifter(fold: Fold, path: Path, size: dict) -> Path:
    """The hardness feedback's reference: the real-only lifter's config (seed 0) on the fold's real stores."""
    from posesynth.lifting.checkpoint import save_lifter
    from posesynth.lifting.train import train_lifter

    if not path.exists():
        t = time.perf_counter()
        data = [(fold.train["real"][p], 1.0 / len(PRESETS)) for p in PRESETS]
        path.parent.mkdir(parents=True, exist_ok=True)
        save_lifter(path, train_lifter(LifterConfig(model="mlp", seed=0, **size["lifter"]), data, progress=False))
        print(f"  reference lifter for {fold.name}: {time.perf_counter() - t:.0f} s", flush=True)
    return path


# ---------------------------------------------------------------------------- lifters (worker processes)
def _one_thread() -> None:
    torch.set_num_threads(1)


def train_and_test(config: LifterConfig, data: list[tuple[str, float]], tests: dict[str, list[str]],
                   categories: list[str] | None, classes: list[str] | None = None,
                   weights: str | None = None) -> dict[str, float]:
    """Train one lifter (or load it from ``weights`` when a file is there, else save it there); its
    mean MPJPE (mm) per test group, the validation group's per held-out category when
    ``categories`` (per file index) is given, and per unseen class (keys "class NAME") when
    ``classes`` (per file index) is too."""
    from posesynth.lifting.checkpoint import load_lifter, save_lifter
    from posesynth.lifting.evaluate import lift_errors
    from posesynth.lifting.train import train_lifter

    if weights and Path(weights).exists():
        lifter = load_lifter(weights)
    else:
        lifter = train_lifter(config, data, progress=False)
        if weights:
            save_lifter(weights, lifter)
    result: dict[str, float] = {}
    for group, stores in tests.items():
        errors = [lift_errors(lifter, s, hypotheses=1) for s in stores]
        mpjpe = np.concatenate([e["mpjpe_mm"] for e in errors])
        result[group] = float(mpjpe.mean())
        if group == "val" and categories is not None:
            label = np.concatenate([e["label"] for e in errors])
            category = np.asarray(categories)[label]
            result |= {c: float(mpjpe[category == c].mean()) for c in HELD_OUT if (category == c).any()}
            if classes is None:
                continue
            unseen, content = category == HELD_OUT[1], np.asarray(classes)[label]
            result |= {f"class {c}": float(mpjpe[unseen & (content == c)].mean()) for c in np.unique(content[unseen])}
    return result


def _made(store: str) -> dict:
    """How the sample store ``store`` was made: its rows, seed, recipe, pose source and body model."""
    attrs = open_store(store, kind=samples.KIND).attrs
    return {k: attrs.get(k) for k in ("seed", "recipe", "source", "body_model")} | {
        "rows": attrs["posesynth"]["num_samples"]}


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def cache_record(config: LifterConfig, data: list[tuple[str, float]], tests: dict[str, list[str]]) -> dict:
    """What a cached result is made of: a digest of the lifter's config and its training stores
    (each one's share and ``_made``), and per test group a digest of its stores."""
    return {"trained_on": _digest([asdict(config), [(_made(s), w) for s, w in data]]),
            "tested_on": {group: _digest([_made(s) for s in stores]) for group, stores in tests.items()}}


def cache_state(path: Path, record: dict) -> str:
    """What the cached result ``path`` needs against ``record`` (``cache_record``): "train" (missing,
    or its lifter trained otherwise), "test" (the same lifter, other test stores: test its saved
    weights again) or "current".  A result written before results kept a record counts as current."""
    if not path.exists():
        return "train"
    recorded = json.loads(path.read_text()).get(CACHE_RECORD)
    if recorded is None:
        return "current"
    if recorded["trained_on"] != record["trained_on"]:
        return "train"
    return "current" if recorded["tested_on"] == record["tested_on"] else "test"


def lifter_weights(path: Path, state: str) -> str:
    """The saved lifter beside the cached result ``path`` (re-testing it needs no training); removed
    first when ``state`` (``cache_state``) says the lifter must be trained again."""
    weights = path.with_suffix(".pt")
    if state == "train":
        weights.unlink(missing_ok=True)
    return str(weights)


def save_result(path: Path, result: dict[str, float], record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**result, CACHE_RECORD: record}))


def recipe_source(set_key: str) -> str | None:
    """The ``RECIPE_SOURCES`` source a set mixes (None if it has none)."""
    return next((s for s in SETS[set_key] if s in RECIPE_SOURCES), None)


def training_mix(set_key: str, args) -> dict[str, float]:
    """The share of each training source in a set: ``SETS``, its ``recipe_source``'s share set by
    ``--synthetic-share``."""
    source = recipe_source(set_key)
    if source is None:
        return SETS[set_key]
    return {"real": 1.0 - args.synthetic_share, source: args.synthetic_share}


def result_path(out: Path, fold: str, set_key: str, variant: str, seed: int) -> Path:
    name = set_key if recipe_source(set_key) is None else f"{set_key}-{variant}"
    return out / "results" / fold / name / f"seed{seed}.json"


def run_lifters(folds: list[Fold], args, size: dict, variant: str) -> None:
    jobs = []
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn"), initializer=_one_thread) as pool:
        for fold in folds:
            group = open_store(fold.store, kind=training.KIND)
            categories, classes = ((held_out_categories(group), training.file_labels(group, "content"))
                                   if fold.name in ("split", SELECTION) else (None, None))
            tests = {g: [str(s) for s in stores] for g, stores in fold.tests.items()}
            for set_key in args.sets.split(","):
                data = [(str(fold.train[src][p]), w / len(PRESETS)) for src, w in training_mix(set_key, args).items()
                        for p in PRESETS]
                for seed in range(args.seeds):
                    path = result_path(args.out, fold.name, set_key, variant, seed)
                    config = LifterConfig(model="mlp", seed=seed, **size["lifter"])
                    record = cache_record(config, data, tests)
                    state = cache_state(path, record)
                    if state == "current":
                        continue
                    jobs.append((path, fold.name, set_key, seed, record,
                                 pool.submit(train_and_test, config, data, tests, categories, classes,
                                             lifter_weights(path, state))))
        for path, fold_name, set_key, seed, record, job in jobs:
            result = job.result()
            save_result(path, result, record)
            print(f"  {fold_name} {set_key} seed {seed}: " + ", ".join(f"{k} {v:.1f}" for k, v in result.items()),
                  flush=True)


# ---------------------------------------------------------------------------- the report
def result_key(fold: str, column: str) -> str:
    """The key of a fold's result that a table column shows ("" if the column is another fold's)."""
    if column in CROSS_FOLDS:
        return "val" if fold == column else ""
    return column if fold == "split" else ""


def _results(out: Path) -> list[tuple[str, str, dict[str, float]]]:
    """(fold, row name, result) of every cached result under ``out``."""
    return [(path.parent.parent.name, path.parent.name, json.loads(path.read_text()))
            for path in sorted((out / "results").glob("*/*/seed*.json"))]


def selection_key(fold: str, column: str) -> str:
    """``result_key`` of the selection fold's table (``SELECTION_COLUMNS`` and its classes)."""
    if fold != SELECTION:
        return ""
    return SELECTION_COLUMNS.get(column, column)


def class_columns(results: list[tuple[str, str, dict[str, float]]], fold_name: str = "split") -> list[str]:
    """The per held-out class columns ("class NAME") of one fold's ``results`` (``_results``)."""
    return sorted({k for fold, _, result in results if fold == fold_name for k in result if k.startswith("class ")})


def collect(results: list[tuple[str, str, dict[str, float]]], columns: tuple[str, ...] | list[str] = COLUMNS,
            key_of: Callable[[str, str], str] = result_key) -> dict[str, dict[str, list[float]]]:
    """row name -> column -> per-seed values, from ``results`` (``_results``); ``key_of(fold, column)``
    names the result that a column shows ("" if none of that fold's)."""
    rows: dict[str, dict[str, list[float]]] = {}
    for fold, row, result in results:
        for column in columns:
            key = key_of(fold, column)
            if key and key in result:
                rows.setdefault(row, {}).setdefault(column, []).append(result[key])
    return rows


def format_table(rows: dict[str, dict[str, list[float]]], columns: tuple[str, ...] | list[str] = COLUMNS) -> str:
    lines = ["| training data | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    real = rows.get("real", {})
    for row, cells in sorted(rows.items(), key=lambda item: item[0] != "real"):  # real first
        out = []
        for c in columns:
            v = cells.get(c)
            if not v:
                out.append("")
                continue
            text = f"{np.mean(v):.1f} ± {np.std(v):.1f}"
            if row != "real" and real.get(c):
                text += f" ({100 * (np.mean(v) / np.mean(real[c]) - 1):+.0f}%)"
            out.append(text)
        set_key, _, variant = row.partition("-")
        label = SET_NAMES[set_key] + (f": {variant}" if variant else "")
        lines.append(f"| {label} | " + " | ".join(out) + " |")
    return "\n".join(lines)


def variant_name(args) -> str:
    if args.variant:
        return args.variant
    text = json.dumps([str(args.recipe), args.set, args.hardness]
                      + ([args.synthetic_share] if args.synthetic_share != DEFAULT_SYNTHETIC_SHARE else []))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def add_size_options(parser: argparse.ArgumentParser) -> None:
    """The options this benchmark and ``adapt.py`` share: their size, their lifters, ``--report``."""
    parser.add_argument("--size", choices=sorted(SIZES), default="default")
    parser.add_argument("--seeds", type=int, default=3, help="lifter seeds per cell")
    parser.add_argument("--steps", type=int, help="override the lifter's steps")
    parser.add_argument("--fold-gan-steps", type=int, help="override the cross-source GANs' steps (when trained)")
    parser.add_argument("--train-n", type=int, help="override the training samples per source and preset")
    parser.add_argument("--test-n", type=int, help="override the test samples")
    parser.add_argument("--workers", type=int, default=2, help="lifters trained at once (one thread each)")
    parser.add_argument("--report", action="store_true", help="only print the tables of the cached results")


def benchmark_size(args) -> dict:
    """``SIZES[args.size]`` with the overrides of ``add_size_options``."""
    overrides = {"train_n": args.train_n, "test_n": args.test_n, "fold_gan_steps": args.fold_gan_steps}
    size = {**SIZES[args.size], **{k: v for k, v in overrides.items() if v}}
    size["lifter"] = {**size["lifter"], **({"steps": args.steps} if args.steps else {})}
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("train.zarr"), help="prepare store (default split)")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="the split fold's GAN")
    parser.add_argument("--out", type=Path, default=Path("runs/downstream"))
    parser.add_argument("--recipe", type=Path, default=DEFAULT_SAMPLE_RECIPE,
                        help="sampling recipe of the synthetic stores (default: the default store's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override of the synthetic stores' recipe, e.g. augment.tilt=0 (repeatable)")
    parser.add_argument("--variant", help="name of this synthetic recipe in the tables (default: a hash)")
    parser.add_argument("--hardness", type=float, default=0.0,
                        help="augment.hardness of the synthetic stores, against a reference lifter trained on "
                             "each fold's real stores (default 0: off)")
    parser.add_argument("--synthetic-share", type=float, default=DEFAULT_SYNTHETIC_SHARE,
                        help="the synthetic stores' share of a real + synthetic lifter's training samples "
                             f"(default {DEFAULT_SYNTHETIC_SHARE})")
    parser.add_argument("--folds", default="split,bandai_namco>hdm05,hdm05>bandai_namco",
                        help=f"comma-separated, of split, {', '.join(CROSS_FOLDS)} and {SELECTION} (the fold for "
                             "choosing settings; not run unless named)")
    parser.add_argument("--sets", default="real,synthetic,recombination",
                        help=f"comma-separated, of {', '.join(SETS)} (augmented: the real poses through the "
                             "recipe under test, mixed as the synthetic stores are)")
    add_size_options(parser)
    args = parser.parse_args()
    unknown = set(args.folds.split(",")) - {"split", SELECTION, *CROSS_FOLDS}
    if unknown:
        parser.error(f"--folds: unknown fold(s) {', '.join(sorted(unknown))}; "
                     f"the folds are split, {', '.join(CROSS_FOLDS)} and {SELECTION}")
    unknown = set(args.sets.split(",")) - set(SETS)
    if unknown:
        parser.error(f"--sets: unknown set(s) {', '.join(sorted(unknown))}; the sets are {', '.join(SETS)}")
    if not 0.0 < args.synthetic_share < 1.0:
        parser.error(f"--synthetic-share must be between 0 and 1 (exclusive), got {args.synthetic_share}")
    if not args.report:
        run(args)
    results = _results(args.out)
    classes, selection = class_columns(results), [*SELECTION_COLUMNS, *class_columns(results, SELECTION)]
    rows, class_rows = collect(results), collect(results, classes)
    selection_rows = collect(results, selection, selection_key)
    tables = {"table": format_table(rows), "class_table": format_table(class_rows, classes),
              "selection_table": format_table(selection_rows, selection)}
    for title, found, table in (("The folds:", rows, "table"),
                                ("The unseen classes, one by one (the split fold):", class_rows, "class_table"),
                                ("The selection fold (for choosing settings; no test side):", selection_rows,
                                 "selection_table")):
        if found:
            print(title, tables[table], "", sep="\n")
    (args.out / "downstream.json").write_text(json.dumps(
        {"rows": rows, "class_rows": class_rows, "selection_rows": selection_rows, **tables}, indent=1))


def run(args) -> None:
    start = time.perf_counter()
    size = benchmark_size(args)
    gan_steps = size["fold_gan_steps"]
    variant = variant_name(args)
    plain = pool_augmentations_off()
    needs_gan = "gan" in needed_sources(args.sets.split(","))
    folds = []
    for name in args.folds.split(","):
        if name == "split":
            check_unseen(load_checkpoint(args.checkpoint), _val_files(args.data), f"{args.data}'s validation split")
            folds.append(Fold(name, args.data, args.checkpoint))
        else:
            path = args.out / "folds" / name / "train.zarr"
            store = (selection_store(args.data, path) if name == SELECTION
                     else fold_store(args.data, path, *CROSS_FOLDS[name]))
            gan = fold_gan(store, args.out / "folds" / name / "gan", gan_steps, "cpu") if needs_gan else None
            folds.append(Fold(name, store, gan))
    print(f"variant {variant}: {args.recipe} {' '.join(args.set)}", flush=True)
    for fold in folds:
        build_fold(fold, args, size, variant, args.set, plain)
    run_lifters(folds, args, size, variant)
    (args.out / f"variant-{variant}.json").write_text(json.dumps(
        {"recipe": str(args.recipe), "set": args.set, "hardness": args.hardness,
         "synthetic_share": args.synthetic_share, "lifter": asdict(LifterConfig(model="mlp", **size["lifter"])),
         "fold_gan_steps": gan_steps, "size": args.size, "seconds": time.perf_counter() - start}, indent=1))
    print(f"done in {(time.perf_counter() - start) / 60:.1f} min", flush=True)


def _val_files(data: Path) -> list[str]:
    return list(load_training_poses(data, split="val").files)


if __name__ == "__main__":
    main()
