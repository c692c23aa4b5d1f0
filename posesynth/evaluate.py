"""``posesynth evaluate``: the pose-quality numbers of a pose source.

The poses judged are the ones ``posesynth sample --seed S`` draws from the source (``generate``:
the same random-number blocks, before the sample recipe's ``[augment]``), compared with the
training store's validation split (whole files, actors or classes never seen in training; a
source that says it learnt from any of its files, ``PoseSource.training_files``, is refused),
next to two baselines on the same split: the training poses themselves, and an
EvoSkeleton-style recombination of them (``posesynth.recombination``).  Every set is posed on
the same mean body, centred on the pelvis and turned to face +z
(``posesynth.metrics.canonical_joints``).

Per set: coverage (each validation pose -> nearest pose of the set), precision (each
pose of the set -> nearest validation pose), novelty (-> nearest training pose; none for the
training poses themselves), APD, FID on joint positions, the plausible fraction and the
bone-length asymmetry; then, for a conditional source, how often a classifier trained on real
poses agrees with the label a sample was conditioned on.

Shapes: N poses of a set, V validation poses, K betas.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from posesynth.body_model import load_body_model
from posesynth.kinematics import forward_kinematics
from posesynth.metrics import apd, canonical_joints, coverage, frechet_distance, nearest_mpjpe
from posesynth.outputs import write_json
from posesynth.plausibility import JointLimits, bone_length_asymmetry, implausible
from posesynth.pose_source import PoseSource, check_unseen, label_index
from posesynth.pose_classifier import train_classifier
from posesynth.recombination import recombine
from posesynth.sample_recipe import resolve_sample_recipe
from posesynth.sampling.generate import block_generators
from posesynth.store import open_store
from posesynth.stores.training import HELD_OUT, KIND, held_out_categories, label_path, split_rows
from posesynth.stores.training_poses import PoseData, load_training_poses

SUBSET = 20000  # poses of a set used for precision and novelty


def sample_block_size() -> int:
    """Rows per random-number block of ``posesynth sample`` with its default recipe."""
    return resolve_sample_recipe().sample.block_size


def generate(source: PoseSource, n: int, seed: int, label: int | None = None,
             block_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` poses ``posesynth sample --seed seed`` draws from ``source``, before its
    augmentations: block ``b`` draws ``block_size`` poses (default: ``sample_block_size()``)
    from its own pose generator (``sampling.generate.block_generators``), whole even when
    fewer are needed, as ``sample`` computes it.

    Returns:
        rotmats (n, 24, 3, 3) and betas (n, K).
    """
    size = block_size or sample_block_size()
    blocks = [source.sample(size, block_generators(seed, b)["pose"], label) for b in range(math.ceil(n / size))]
    return torch.cat([p.rotmats for p in blocks])[:n], torch.cat([p.betas for p in blocks])[:n]

def _subset(x: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
    return x if len(x) <= n else x[torch.randperm(len(x), generator=g)[:n]]


def set_metrics(name: str, rotmats: torch.Tensor, joints: torch.Tensor, val: torch.Tensor, train: torch.Tensor | None,
                limits: JointLimits, posed: torch.Tensor, seed: int,
                val_groups: dict[str, np.ndarray]) -> dict[str, Any]:
    """All metrics of one pose set (the module docstring's columns), distances in mm.

    Args:
        rotmats: (N, 24, 3, 3) the set's poses.
        joints: (N, 24, 3) their canonical joints (``metrics.canonical_joints``).
        val: (V, 24, 3) the validation poses' canonical joints.
        train: (M, 24, 3) the training poses' canonical joints, for novelty; None for the
            training poses themselves (no novelty).
        limits: the training poses' joint limits (the plausible fraction).
        posed: (N, 24, 3) world joints on the set's own bodies (bone-length symmetry).
        val_groups: group name -> (V,) bool, for coverage per group of validation poses.
    """
    g = torch.Generator().manual_seed(seed)
    sub = _subset(joints, SUBSET, g)
    row: dict[str, Any] = {"set": name, "n": len(joints)}
    nearest = nearest_mpjpe(val, joints)
    row.update({f"coverage_{k}": v for k, v in coverage(nearest).items()})
    row["coverage_by_group"] = {group: coverage(nearest[torch.as_tensor(mask)])
                                for group, mask in val_groups.items()}
    row["precision_median_mm"] = coverage(nearest_mpjpe(sub, val))["median_mm"]
    row["novelty_median_mm"] = None if train is None else coverage(nearest_mpjpe(sub, train))["median_mm"]
    row["apd_mm"] = apd(joints, generator=g)
    row["fid_mm2"] = frechet_distance(val, joints)
    row["plausible"] = 1.0 - float(implausible(rotmats, limits)["any"].double().mean())
    row["bone_asymmetry_mm"] = 1000.0 * bone_length_asymmetry(posed)
    return row


def validation_groups(data: str | Path) -> dict[str, np.ndarray]:
    """Masks (V,) over the validation poses of a training store (in ``load_training_poses``'s
    order): per source, and per reason the pose is held out (``stores.training.HELD_OUT``); empty groups
    are left out."""
    group = open_store(data, kind=KIND)
    rows = split_rows(group, "val", data)
    source, file = group[label_path("source")][:][rows], group[label_path("file")][:][rows]
    category = np.asarray(held_out_categories(group))[file]
    groups = {f"source {name}": source == i for i, name in enumerate(group.attrs["labels"]["source"])}
    groups.update({name: category == name for name in HELD_OUT})
    return {name: mask for name, mask in groups.items() if mask.any()}


def conditional_agreement(source: PoseSource, data: PoseData, val: PoseData, rest: torch.Tensor,
                          n_per_class: int, min_frames: int, seed: int,
                          block_size: int | None = None) -> list[dict[str, Any]]:
    """Per class of ``data`` (the training poses) with at least ``min_frames`` frames that the
    source can be conditioned on: how often a classifier trained on the real training poses
    labels samples conditioned on the class (``generate`` with seed ``seed + 7 + class``) as
    the class, next to its accuracy on the real validation poses of that class (the
    reference).  ``rest``: (24, 3) the rest joints the poses are put on."""
    classes = len(data.label_names)
    clf = train_classifier(canonical_joints(data.rotmats, rest), data.labels, classes, seed=seed)
    val_pred = clf.predict(canonical_joints(val.rotmats, rest))
    rows = []
    counts = torch.bincount(data.labels, minlength=classes)
    for c, name in enumerate(data.label_names):
        if counts[c] < min_frames or name not in source.label_names:
            continue
        rot, _ = generate(source, n_per_class, seed + 7 + c, label_index(source, name), block_size)
        pred = clf.predict(canonical_joints(rot, rest))
        in_val = val.labels == c
        rows.append({"class": name, "train_frames": int(counts[c]),
                     "samples_labelled_as_class": float((pred == c).double().mean()),
                     "real_val_labelled_as_class": float((val_pred[in_val] == c).double().mean()) if in_val.any() else None})
    return rows

def evaluate(source: PoseSource, data: str | Path, n: int = 100_000, seed: int = 0,
             conditional: bool = True, min_class_frames: int = 1000, n_per_class: int = 2000,
             body_model: str | Path | None = None, log: Callable[[str], None] = print,
             hardness_lifter: str | Path | None = None, block_size: int | None = None) -> dict[str, Any]:
    """The full evaluation of ``source`` on the training store ``data`` as a dict (see the
    module docstring): its first ``n`` poses of ``posesynth sample --seed seed`` (``generate``,
    blocks of ``block_size`` rows); with ``hardness_lifter``, also ``hardness_report`` of the
    generated, training, validation and recombined poses."""
    label_field = getattr(source, "label_field", None)  # an optional part of a PoseSource
    train, val = (load_training_poses(data, label_field or "content", split, "frame") for split in ("train", "val"))
    if not check_unseen(source, val.files, f"{data}'s validation split"):
        log(f"{source.identity} does not say which files it learnt from: {data}'s validation split "
            "may not be held out from it")
    body = load_body_model(body_model)
    rest = body.rest_joints(torch.zeros(1, body.num_betas)).double()[0]
    limits = JointLimits.from_poses(train.rotmats)
    train_j, val_j = canonical_joints(train.rotmats, rest), canonical_joints(val.rotmats, rest)
    rng = torch.Generator().manual_seed(seed)
    groups = validation_groups(data)
    log(f"generating {n} poses from {source.identity}")
    gen_rot, gen_betas = generate(source, n, seed, block_size=block_size)
    evo = recombine(train.rotmats, n, limits, rng)
    m, no_betas = len(train), torch.zeros(max(n, len(train)), body.num_betas)
    sets = [(f"posesynth (N={n})", gen_rot, gen_betas, train_j),
            (f"posesynth (N={m}, as many as training poses)", gen_rot[:m], gen_betas[:m], train_j),
            (f"training poses (N={m})", train.rotmats, no_betas[:m], None),
            (f"recombination (N={n})", evo, no_betas[:n], train_j)]
    rows = [set_metrics(name, rot, canonical_joints(rot, rest), val_j, novelty_to, limits,
                        forward_kinematics(rot.float(), body.rest_joints(betas.float()))[1], seed, groups)
            for name, rot, betas, novelty_to in sets]
    result: dict[str, Any] = {"source": source.identity, "data": str(data),
                              "val_poses": len(val), "val_apd_mm": apd(val_j, generator=rng), "sets": rows,
                              "val_group_sizes": {g: int(mask.sum()) for g, mask in groups.items()}}
    if hardness_lifter is not None:
        log(f"scoring every set with the reference lifter {hardness_lifter}")
        result["hardness"] = hardness_report(hardness_lifter, {"posesynth": gen_rot, "training poses": train.rotmats,
                                                               "validation poses": val.rotmats,
                                                               "recombination": evo}, body, seed)
    if conditional and label_field and source.label_names:
        log("training the pose classifier for the conditional check")
        result["conditional"] = {"label_field": label_field, "classes": conditional_agreement(
            source, train, val, rest, n_per_class, min_class_frames, seed, block_size)}
    return result

def hardness_report(lifter: str | Path, sets: dict[str, torch.Tensor], body, seed: int,
                    n: int = SUBSET) -> dict[str, dict[str, float]]:
    """How hard each pose set (name -> (N, 24, 3, 3)) is for a reference lifter: its MPJPE (mm;
    mean, median, 90th percentile) on up to ``n`` poses of each, on the mean body, seen through
    Human3.6M-like cameras (``posesynth.hardness``)."""
    from posesynth.cameras import load_camera_preset
    from posesynth.hardness import HardnessSelector

    scorer = HardnessSelector(lifter, 0.0, body, load_camera_preset("h36m"))
    g = torch.Generator().manual_seed(seed)
    report = {}
    for name, rotmats in sets.items():
        poses = _subset(rotmats.float(), n, g)
        error = 1000.0 * scorer.errors(poses, torch.zeros(len(poses), body.num_betas), g).double()
        report[name] = {"mean_mm": float(error.mean()), "median_mm": float(error.median()),
                        "p90_mm": float(error.quantile(0.9))}
    return report


COLUMNS = (("coverage_median_mm", "cov med", ".1f"), ("coverage_under_100mm", "cov<100", ".3f"),
           ("coverage_under_50mm", "cov<50", ".3f"), ("precision_median_mm", "prec med", ".1f"),
           ("novelty_median_mm", "novel med", ".1f"), ("apd_mm", "APD", ".1f"), ("fid_mm2", "FID", ".0f"),
           ("plausible", "plaus", ".4f"), ("bone_asymmetry_mm", "asym mm", ".2f"))


def format_table(result: dict[str, Any]) -> str:
    """The evaluation as a Markdown table (distances in mm)."""
    head = "| set | " + " | ".join(c[1] for c in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    for row in result["sets"]:
        lines.append(f"| {row['set']} | " + " | ".join("-" if row[k] is None else format(row[k], f)
                                                        for k, _, f in COLUMNS) + " |")
    lines.append(f"\nvalidation poses: {result['val_poses']}, their APD: {result['val_apd_mm']:.1f} mm")
    lines.append(format_groups(result))
    if "hardness" in result:
        lines.append("\nhardness: the reference lifter's MPJPE on each set (mean / median / 90th percentile, mm)")
        lines.append("| set | mean | median | p90 |\n|---|---|---|---|")
        for name, h in result["hardness"].items():
            lines.append(f"| {name} | {h['mean_mm']:.1f} | {h['median_mm']:.1f} | {h['p90_mm']:.1f} |")
    if "conditional" in result:
        lines.append(f"\nconditional sampling ({result['conditional']['label_field']}): samples labelled as their "
                     "class by a classifier trained on real poses (reference: real validation poses)")
        lines.append("| class | train frames | samples | real val |\n|---|---|---|---|")
        for c in result["conditional"]["classes"]:
            ref = "-" if c["real_val_labelled_as_class"] is None else f"{c['real_val_labelled_as_class']:.2f}"
            lines.append(f"| {c['class']} | {c['train_frames']} | {c['samples_labelled_as_class']:.2f} | {ref} |")
    return "\n".join(lines)


def format_groups(result: dict[str, Any]) -> str:
    """Coverage per group of validation poses: median mm / fraction under 100 mm, per set."""
    groups = list(result["sets"][0]["coverage_by_group"])
    lines = ["\ncoverage per group of validation poses (median mm / fraction under 100 mm; poses in group)",
             "| set | " + " | ".join(groups) + " |", "|" + "---|" * (len(groups) + 1),
             "| validation poses | " + " | ".join(str(result["val_group_sizes"][g]) for g in groups) + " |"]
    for row in result["sets"]:
        cells = (row["coverage_by_group"][g] for g in groups)
        lines.append(f"| {row['set']} | " + " | ".join(f"{c['median_mm']:.1f} / {c['under_100mm']:.3f}" for c in cells)
                     + " |")
    return "\n".join(lines)


def plot_joint_angles(source: PoseSource, data: str | Path, out_dir: str | Path, seed: int = 0,
                      n: int = 20_000) -> Path:
    """``out_dir/joint_angles.png``: each joint's rotation angle, the source's poses (``generate``)
    vs the real validation poses."""
    from posesynth.plots import plot_joint_angle_distributions

    val = load_training_poses(data, split="val", balance="frame")
    generated, _ = generate(source, n, seed)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return plot_joint_angle_distributions(val.rotmats, generated, Path(out_dir) / "joint_angles.png",
                                          labels=("real (validation)", "generated"))

def write_result(result: dict[str, Any], path: str | Path) -> None:
    """The results as JSON at ``path`` (a report: replaced if it exists), written atomically."""
    write_json(result, path)
