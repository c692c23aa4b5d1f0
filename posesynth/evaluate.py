"""``posesynth evaluate``: the pose-quality numbers of a checkpoint.

Generated poses are compared with the training store's validation split (whole
files, actors or classes never seen in training; a checkpoint trained on any of its
files is refused), next to two baselines on the same split: the
training poses themselves, and an EvoSkeleton-style recombination of them
(``posesynth.recombination``).  Every set is posed on the same mean body, centred on
the pelvis and turned to face +z (``posesynth.metrics.canonical_joints``).

Per set: coverage (each validation pose -> nearest pose of the set), precision (each
pose of the set -> nearest validation pose), novelty (-> nearest training pose), APD,
FID on joint positions, the plausible fraction and the bone-length asymmetry; then,
for a conditional checkpoint, how often a classifier trained on real poses agrees
with the label a sample was conditioned on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from posesynth.body_model import load_body_model
from posesynth.gan.checkpoint import GanPoseSource, load_checkpoint
from posesynth.kinematics import forward_kinematics
from posesynth.metrics import apd, canonical_joints, coverage, frechet_distance, nearest_mpjpe
from posesynth.outputs import write_json
from posesynth.plausibility import JointLimits, bone_length_asymmetry, implausible
from posesynth.pose_source import check_unseen
from posesynth.pose_classifier import train_classifier
from posesynth.recombination import recombine
from posesynth.store import open_store
from posesynth.stores.training import HELD_OUT, KIND, held_out_categories, label_path, split_rows
from posesynth.stores.training_poses import PoseData, load_training_poses

SUBSET = 20000  # poses of a set used for precision and novelty


def generate(source: GanPoseSource, n: int, seed: int, label: int | None = None,
             chunk: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` poses (n, 24, 3, 3) and betas (n, K) from a checkpoint, in seeded chunks."""
    rot, betas = [], []
    for i, start in enumerate(range(0, n, chunk)):
        g = torch.Generator().manual_seed(seed * 1_000_003 + i)
        batch = source.sample(min(chunk, n - start), g, label)
        rot.append(batch.rotmats)
        betas.append(batch.betas)
    return torch.cat(rot), torch.cat(betas)


def _subset(x: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
    return x if len(x) <= n else x[torch.randperm(len(x), generator=g)[:n]]


def set_metrics(name: str, rotmats: torch.Tensor, joints: torch.Tensor, val: torch.Tensor, train: torch.Tensor | None,
                limits: JointLimits, posed: torch.Tensor, seed: int,
                val_groups: dict[str, np.ndarray]) -> dict[str, Any]:
    """All metrics of one pose set: ``joints`` canonical (N, 24, 3), ``posed`` world joints
    on the set's own bodies (for bone-length symmetry); coverage also per group of validation
    poses (``val_groups``: name -> (V,) bool)."""
    g = torch.Generator().manual_seed(seed)
    sub = _subset(joints, SUBSET, g)
    row: dict[str, Any] = {"set": name, "n": len(joints)}
    nearest = nearest_mpjpe(val, joints)
    row.update({f"coverage_{k}": v for k, v in coverage(nearest).items()})
    row["coverage_by_group"] = {group: coverage(nearest[torch.as_tensor(mask)])
                                for group, mask in val_groups.items()}
    row["precision_median_mm"] = coverage(nearest_mpjpe(sub, val))["median_mm"]
    row["novelty_median_mm"] = coverage(nearest_mpjpe(sub, train))["median_mm"] if train is not None else 0.0
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


def conditional_agreement(source: GanPoseSource, data: PoseData, val: PoseData, rest: torch.Tensor,
                          n_per_class: int, min_frames: int, seed: int) -> list[dict[str, Any]]:
    """Per class with at least ``min_frames`` training frames: how often a classifier trained
    on real training poses labels samples conditioned on the class as the class, next to
    its accuracy on the real validation poses of that class (the reference)."""
    classes = len(data.label_names)
    clf = train_classifier(canonical_joints(data.rotmats, rest), data.labels, classes, seed=seed)
    val_pred = clf.predict(canonical_joints(val.rotmats, rest))
    rows = []
    counts = torch.bincount(data.labels, minlength=classes)
    for c, name in enumerate(data.label_names):
        if counts[c] < min_frames:
            continue
        rot, _ = generate(source, n_per_class, seed + 7 + c, label=c)
        pred = clf.predict(canonical_joints(rot, rest))
        in_val = val.labels == c
        rows.append({"class": name, "train_frames": int(counts[c]),
                     "samples_labelled_as_class": float((pred == c).double().mean()),
                     "real_val_labelled_as_class": float((val_pred[in_val] == c).double().mean()) if in_val.any() else None})
    return rows


def evaluate(checkpoint: str | Path, data: str | Path, n: int = 100_000, seed: int = 0,
             conditional: bool = True, min_class_frames: int = 1000, n_per_class: int = 2000,
             body_model: str | Path | None = None, log: Callable[[str], None] = print,
             hardness_lifter: str | Path | None = None) -> dict[str, Any]:
    """The full evaluation as a dict (see the module docstring); with ``hardness_lifter``, also
    ``hardness_report`` of the generated, training, validation and recombined poses."""
    source = load_checkpoint(checkpoint)
    body = load_body_model(body_model)
    train = load_training_poses(data, source.label_field, "train", "frame")
    val = load_training_poses(data, source.label_field, "val", "frame")
    check_unseen(source, val.files, f"{data}'s validation split")
    rest = body.rest_joints(torch.zeros(1, body.num_betas)).double()[0]
    limits = JointLimits.from_poses(train.rotmats)
    train_j, val_j = canonical_joints(train.rotmats, rest), canonical_joints(val.rotmats, rest)
    rng = torch.Generator().manual_seed(seed)
    groups = validation_groups(data)

    def on_bodies(rotmats: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        return forward_kinematics(rotmats.float(), body.rest_joints(betas.float()))[1]

    log(f"generating {n} poses from {source.identity}")
    gen_rot, gen_betas = generate(source, n, seed)
    gen_j = canonical_joints(gen_rot, rest)
    m = len(train)
    evo = recombine(train.rotmats, n, limits, rng)
    zero_betas = torch.zeros(m, body.num_betas)
    rows = [
        set_metrics(f"posesynth (N={n})", gen_rot, gen_j, val_j, train_j, limits, on_bodies(gen_rot, gen_betas), seed,
                    groups),
        set_metrics(f"posesynth (N={m}, as many as training poses)", gen_rot[:m], gen_j[:m], val_j, train_j, limits,
                    on_bodies(gen_rot[:m], gen_betas[:m]), seed, groups),
        set_metrics(f"training poses (N={m})", train.rotmats, train_j, val_j, None, limits,
                    on_bodies(train.rotmats, zero_betas), seed, groups),
        set_metrics(f"recombination (N={n})", evo, canonical_joints(evo, rest), val_j, train_j, limits,
                    on_bodies(evo, torch.zeros(n, body.num_betas)), seed, groups),
    ]
    result: dict[str, Any] = {"checkpoint": str(checkpoint), "source": source.identity, "data": str(data),
                              "val_poses": len(val), "val_apd_mm": apd(val_j, generator=rng), "sets": rows,
                              "val_group_sizes": {g: int(mask.sum()) for g, mask in groups.items()}}
    if hardness_lifter is not None:
        log(f"scoring every set with the reference lifter {hardness_lifter}")
        result["hardness"] = hardness_report(hardness_lifter, {"posesynth": gen_rot, "training poses": train.rotmats,
                                                               "validation poses": val.rotmats,
                                                               "recombination": evo}, body, seed)
    if conditional and source.label_names:
        log("training the pose classifier for the conditional check")
        result["conditional"] = {"label_field": source.label_field, "classes": conditional_agreement(
            source, train, val, rest, n_per_class, min_class_frames, seed)}
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
        lines.append(f"| {row['set']} | " + " | ".join(format(row[k], f) for k, _, f in COLUMNS) + " |")
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


def plot_joint_angles(checkpoint: str | Path, data: str | Path, out_dir: str | Path, seed: int = 0,
                      n: int = 20_000) -> Path:
    """``out_dir/joint_angles.png``: each joint's rotation angle, generated vs real validation poses."""
    from posesynth.plots import plot_joint_angle_distributions

    source = load_checkpoint(checkpoint)
    val = load_training_poses(data, source.label_field, "val", "frame")
    generated, _ = generate(source, n, seed)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return plot_joint_angle_distributions(val.rotmats, generated, Path(out_dir) / "joint_angles.png",
                                          labels=("real (validation)", "generated"))


def write_result(result: dict[str, Any], path: str | Path) -> None:
    """The results as JSON at ``path`` (a report: replaced if it exists), written atomically."""
    write_json(result, path)
