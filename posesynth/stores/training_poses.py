"""The poses of a training store, as the GAN, ``evaluate``, recombination and the benchmarks use them.

Every frame becomes SMPL's 24 rotations with the global orientation's yaw removed (the camera
chooses the view later), a label index, and a sampling weight (``balance_weights``).

Shapes: N frames.
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
from posesynth.store import open_store
from posesynth.stores.training import KIND, label_path, smpl_path, split_rows

BALANCES = ("frame", "source", "source_class")


@dataclass(frozen=True)
class PoseData:
    """The poses of a training store's split, as the GAN trains on them: SMPL's 24 rotations with
    the global orientation's yaw removed (the camera chooses the view later), a label index and a
    sampling weight per frame."""

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
    """Per-row sampling probabilities (N,) from source codes (N,) and label codes (N,):
    ``frame`` uniform; ``source`` equal total per source; ``source_class`` equal per source and,
    within it, equal per class.  The pool is lopsided (most frames are Bandai's, HDM05 is one
    ninth), so the default ``source_class`` lets the model see kicks and squats as often as walks."""
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
    """The poses of the ``split`` rows ("train", "val" or "all") of a training store: N frames'
    rotations (N, 24, 3, 3), yaw-free, their ``label_field`` codes (N,) and ``balance`` weights (N,)."""
    group = open_store(path, kind=KIND)
    if label_field not in group.attrs["labels"]:
        raise RecipeError(f"{path}: no label field {label_field!r} (data.label_field); it has {sorted(group.attrs['labels'])}")
    keep = split_rows(group, split, path)
    pose = np.concatenate([group[smpl_path("global_orient")][:], group[smpl_path("body_pose")][:]], axis=1)[keep]
    rotmats = axis_angle_to_matrix(torch.as_tensor(pose).reshape(-1, NUM_JOINTS, 3))
    rotmats[:, 0] = remove_yaw(rotmats[:, 0])
    label = group[label_path(label_field)][:][keep].astype(np.int64)
    weights = balance_weights(group[label_path("source")][:][keep], label, balance)
    file_names = group.attrs["labels"]["file"]
    files = tuple(file_names[i] for i in np.unique(group[label_path("file")][:][keep]))
    return PoseData(rotmats, torch.as_tensor(label), torch.as_tensor(weights), label_field,
                    tuple(group.attrs["labels"][label_field]), files)
