"""How well a lifter does on a sample store: MPJPE and PA-MPJPE in millimetres.

``lift_errors`` gives per-example errors (every view of every row is an example), so callers
can group them their own way; ``evaluate_lifter`` summarises them overall and per label of the
store (the label its poses were drawn with).  For a cGAN lifter it adds, over ``k`` hypotheses
(the first z = 0): ``best_of_k_mm`` (the closest hypothesis, the usual multi-hypothesis
metric), ``mean_of_k_mm`` (the average hypothesis), and ``reprojection_px``: the z = 0
prediction placed in the camera (``geometry.solve_translation``) and projected, its mean
distance from the input 2D in pixels.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from posesynth.data import PoseStoreIterable
from posesynth.lifting.checkpoint import Lifter, LifterError
from posesynth.lifting.features import lifter_batch, root_weights
from posesynth.lifting.geometry import procrustes_align, reproject
from posesynth.lifting.models import CGANLifter
from posesynth.metrics import mpjpe
from posesynth.store import open_store
from posesynth.stores import samples


@torch.no_grad()
def lift_errors(lifter: Lifter, store: str | Path, hypotheses: int = 5, noisy: bool = False, batch_size: int = 4096,
                seed: int = 0, progress: bool = False) -> dict[str, np.ndarray]:
    """Per-example errors (n,) in mm (and ``label`` (n,) int64, -1: none)."""
    # every row, also inside a DDP process group (where the dataset would read one rank's share)
    rows = PoseStoreIterable(store, batch_size, shuffle=False, keypoint_set=lifter.config.keypoint_set,
                             noisy=noisy, fields=("pixels", "camera", "K", "label"), rank=0, world_size=1)
    root = root_weights(lifter.kset)
    generator = torch.Generator().manual_seed(seed)
    out: dict[str, list[np.ndarray]] = {}
    for batch in tqdm(rows, desc="lift eval", unit="batch", disable=not progress):
        V = batch["pixels"].shape[1]
        pixels, camera, K = (batch[f].flatten(0, 1) for f in ("pixels", "camera", "K"))
        features, coords, target = lifter_batch(pixels, camera, K, root)
        pred = lifter.predict_features(features)
        mm = 1000.0
        errors = {"mpjpe_mm": mm * mpjpe(pred, target), "pa_mpjpe_mm": mm * mpjpe(procrustes_align(pred, target), target)}
        if isinstance(lifter.model, CGANLifter):
            hyps = lifter.hypotheses(features, hypotheses, generator)
            per_hyp = mpjpe(hyps, target[:, None])
            errors |= {"best_of_k_mm": mm * per_hyp.min(1).values, "mean_of_k_mm": mm * per_hyp.mean(1)}
            focal = torch.stack([K[:, 0, 0], K[:, 1, 1]], -1)[:, None]
            errors["reprojection_px"] = ((reproject(pred, coords) - coords) * focal).norm(dim=-1).mean(-1)
        for name, value in errors.items():
            out.setdefault(name, []).append(value.double().numpy())
        out.setdefault("label", []).append(batch["label"].repeat_interleave(V).numpy())
    if not out:
        raise LifterError(f"{store}: the store has no rows")
    return {k: np.concatenate(v) for k, v in out.items()}


def summarise(errors: Mapping[str, np.ndarray], mask: np.ndarray | None = None) -> dict[str, float]:
    """Mean of every error (and ``n``) over the examples in ``mask`` (default: all)."""
    keep = np.ones(len(errors["mpjpe_mm"]), bool) if mask is None else mask
    summary = {k: float(v[keep].mean()) for k, v in errors.items() if k != "label" and keep.any()}
    return {"n": int(keep.sum()), **summary}


def evaluate_lifter(lifter: Lifter, store: str | Path, hypotheses: int = 5, noisy: bool = False,
                    progress: bool = False) -> dict[str, dict]:
    """``{"overall": summary, "by_label": {label name: summary}}`` on ``store``."""
    errors = lift_errors(lifter, store, hypotheses, noisy, progress=progress)
    names = open_store(store, kind=samples.KIND).attrs.get("labels", [])
    by_label = {names[i]: summarise(errors, errors["label"] == i) for i in np.unique(errors["label"]) if i >= 0}
    return {"overall": summarise(errors), "by_label": by_label}


def format_evaluation(result: Mapping[str, dict], title: str) -> str:
    """A plain-text table: overall, then one row per label."""
    columns = [c for c in result["overall"] if c != "n"]
    lines = [title, "| set | n | " + " | ".join(c.removesuffix("_mm") for c in columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    rows = [("overall", result["overall"])] + sorted(result["by_label"].items())
    for name, summary in rows:
        lines.append(f"| {name} | {summary['n']} | " + " | ".join(f"{summary.get(c, float('nan')):.1f}" for c in columns)
                     + " |")
    return "\n".join(lines)
