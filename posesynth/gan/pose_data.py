"""Training poses for the GAN, read from a ``prepare`` training store.

Every frame becomes 24 rotations in 6D with the global orientation's yaw removed
(the camera chooses the view later), a label index, and a sampling weight.  The
pool is lopsided (most frames are Bandai's, HDM05 is one ninth), so the default
balance gives every source the same total weight and, within a source, every
class the same weight: the model sees kicks and squats as often as walks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from posesynth.config import RecipeError
from posesynth.kinematics import remove_yaw
from posesynth.rotations import axis_angle_to_matrix, matrix_to_rot6d
from posesynth.skeleton import NUM_JOINTS
from posesynth.store import open_store, split_rows

BALANCES = ("frame", "source", "source_class")


@dataclass(frozen=True)
class PoseData:
    rotmats: torch.Tensor  # (N, 24, 3, 3) yaw-free
    labels: torch.Tensor  # (N,) int64 index into label_names
    weights: torch.Tensor  # (N,) float64, sums to 1
    label_field: str
    label_names: tuple[str, ...]
    files: tuple[str, ...] = ()  # the mocap files the rows come from

    @property
    def rot6d(self) -> torch.Tensor:
        """(N, 24, 6)"""
        return matrix_to_rot6d(self.rotmats)

    def __len__(self) -> int:
        return self.rotmats.shape[0]


def balance_weights(source: np.ndarray, label: np.ndarray, balance: str) -> np.ndarray:
    """Per-row sampling probabilities (N,): ``frame`` uniform; ``source`` equal total per
    source; ``source_class`` equal per source and, within it, equal per class."""
    if balance not in BALANCES:
        raise RecipeError(f"data.balance must be one of {BALANCES}, got {balance!r}")
    w = np.ones(len(source))
    if balance in ("source", "source_class"):
        groups = source.astype(np.int64) * (label.max() + 1 if balance == "source_class" else 1)
        groups = groups + (label if balance == "source_class" else 0)
        _, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
        w = 1.0 / counts[inverse]
        if balance == "source_class":  # classes share their source's weight equally
            per_source = {s: len(np.unique(label[source == s])) for s in np.unique(source)}
            w = w / np.array([per_source[s] for s in source])
    return w / w.sum()


def load_training_poses(path: str | Path, label_field: str = "content", split: str = "train",
                        balance: str = "source_class") -> PoseData:
    """Read the ``split`` rows ("train", "val" or "all") of a training store."""
    group = open_store(path, kind="training")
    if label_field not in group.attrs["labels"]:
        raise RecipeError(f"{path}: no label field {label_field!r} (data.label_field); it has {sorted(group.attrs['labels'])}")
    keep = split_rows(group, split, path)
    pose = np.concatenate([group["global_orient"][:], group["body_pose"][:]], axis=1)[keep]
    rotmats = axis_angle_to_matrix(torch.as_tensor(pose).reshape(-1, NUM_JOINTS, 3))
    rotmats[:, 0] = remove_yaw(rotmats[:, 0])
    label = group[label_field][:][keep].astype(np.int64)
    weights = balance_weights(group["source"][:][keep], label, balance)
    file_names = group.attrs["labels"]["file"]
    files = tuple(file_names[i] for i in np.unique(group["file"][:][keep]))
    return PoseData(rotmats, torch.as_tensor(label), torch.as_tensor(weights), label_field,
                    tuple(group.attrs["labels"][label_field]), files)
