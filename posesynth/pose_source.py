"""Where sampled poses come from: the interface between pose generators and ``sample``.

A *pose source* turns random numbers into body poses on SMPL's tree (``PoseSource``).  The
GAN checkpoint (``posesynth.gan.checkpoint.GanPoseSource``) is one; the training store
replayed (``StorePoseSource``, here) is another, used for real-pose baselines; recombined
training poses (``posesynth.recombination.RecombinationPoseSource``) are a third.
``posesynth.pose_sources.load_pose_source`` loads the one stored at a path.

Determinism contract: a source draws every random number it needs from the
``torch.Generator`` it is given, on the CPU, in an order that depends only on ``n``
(never on the device or on how the caller batches), so the same generator state
gives the same poses.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from posesynth.errors import PosesynthError
from posesynth.kinematics import remove_yaw
from posesynth.plausibility import JointLimits
from posesynth.rotations import axis_angle_to_matrix
from posesynth.skeleton import NUM_JOINTS
from posesynth.store import open_store
from posesynth.stores.training import KIND, label_path, smpl_path, split_rows


class PoseSourceError(PosesynthError, ValueError):
    """A pose source that cannot be loaded or used as asked; the message names it."""


@dataclass(frozen=True)
class PoseBatch:
    """B poses.  Local rotations are relative to the parent in SMPL's rest pose;
    ``rotmats[:, 0]`` is the global orientation, with yaw left to the camera."""

    rotmats: torch.Tensor  # (B, 24, 3, 3)
    betas: torch.Tensor  # (B, K)
    labels: torch.Tensor  # (B,) int64 index into the source's ``label_names``; -1 = none

    def __len__(self) -> int:
        return self.rotmats.shape[0]


class PoseSource(Protocol):
    """Anything ``sample`` and ``evaluate`` can draw poses from.

    Besides these three members a source may have optional attributes, where they mean
    something for it; callers read them with ``getattr(source, name, None)``:

    - ``label_field: str``: the training store's label field ``label_names`` are the
      vocabulary of (``evaluate`` reads the real poses' labels from it; the sample store
      records it);
    - ``training_files: tuple[str, ...]``: the mocap files (the training store's ``file``
      labels) its poses were learnt or taken from (``check_unseen``);
    - ``body_model: str``: the identity of the body model its poses were made with
      (``sample`` refuses to dress them in another);
    - ``sha256: str``: the digest of its file (recorded in the sample store);
    - ``joint_limits: plausibility.JointLimits``: the range of its poses' joint rotations
      (``augment.mutation``, on in the default recipe, keeps mutated poses within them and
      refuses a source without them);
    - ``tempered(temperature) -> PoseSource``: the source drawing further from its modes
      (``augment.temperature``; a GAN's latents).
    """

    @property
    def label_names(self) -> tuple[str, ...]:
        """Vocabulary of the labels a caller may condition on (may be empty)."""

    @property
    def identity(self) -> str:
        """Short, stable identifier of what the poses come from (a file name and a hash)."""

    def sample(self, n: int, generator: torch.Generator, label: int | None = None,
               device: torch.device | str = "cpu") -> PoseBatch:
        """Draw ``n`` poses; ``label`` conditions on one label (None: any)."""


def label_index(source: PoseSource, name: str) -> int | None:
    """The index of label ``name`` in the source's vocabulary (None for ""); a name it does
    not have is a PoseSourceError listing the labels it has."""
    if not name:
        return None
    if name not in source.label_names:
        known = ", ".join(source.label_names) or "none: the source is unconditional"
        raise PoseSourceError(f"{source.identity} has no label {name!r}; its labels: {known}")
    return source.label_names.index(name)


def check_unseen(source: PoseSource, files: Sequence[str], what: str) -> bool:
    """Whether the source says which files it learnt from (``training_files``); a
    PoseSourceError if any of ``files`` (e.g. a validation split's) is among them, as numbers
    measured on them would not be held-out ones."""
    training_files = getattr(source, "training_files", None)
    if training_files is None:
        return False
    seen = sorted(set(files) & set(training_files))
    if seen:
        raise PoseSourceError(f"{source.identity} was trained on {len(seen)} of {what}'s files (e.g. {seen[0]}); "
                              f"its numbers would not be held-out ones. Prepare the store with the split "
                              f"the source was trained with, or train on this store.")
    return True


# ---------------------------------------------------------------------------- replaying real poses
class StorePoseSource:
    """Real poses replayed from a ``prepare`` training store (a ``PoseSource``).

    Each draw picks rows of ``split`` ("train", "val" or "all") uniformly at random,
    with replacement.  The global orientation has its yaw removed (the body faces +z,
    as the GAN's poses do); ``betas`` are the row's own (``sample.betas = "prior"`` puts
    the poses on SMPL's prior instead).  ``label_names`` is the vocabulary of
    ``label_field``; the returned labels are each row's own label; ``training_files`` are
    the files of the split's rows.

    This is the "real poses through random cameras" baseline, and the source the tests use.
    ``path`` and ``options`` rebuild it elsewhere (``pose_sources.load_pose_source(path, **options)``).
    """

    def __init__(self, path: str | Path, split: str = "train", label_field: str = "content") -> None:
        self.path = Path(path)
        self.options = {"split": split, "label_field": label_field}
        group = open_store(self.path, kind=KIND)
        labels = group.attrs["labels"]
        if label_field not in labels:
            raise PoseSourceError(f"{self.path}: no label field {label_field!r}; it has {sorted(labels)}")
        rows = split_rows(group, split, self.path)
        pose = np.concatenate([group[smpl_path("global_orient")][:], group[smpl_path("body_pose")][:]], axis=1)[rows]
        self._pose = torch.as_tensor(pose).reshape(-1, NUM_JOINTS, 3)  # (N, 24, 3) axis-angle
        self._betas = torch.as_tensor(group[smpl_path("betas")][:][rows])  # (N, K)
        self._labels = torch.as_tensor(group[label_path(label_field)][:][rows].astype(np.int64))  # (N,)
        self._label_names = tuple(labels[label_field])
        self.label_field = label_field
        self.training_files = tuple(labels["file"][i] for i in np.unique(group[label_path("file")][:][rows]))
        self.body_model: str = group.attrs["body_model"]
        digest = hashlib.sha256(json.dumps(dict(group.attrs), sort_keys=True).encode()).hexdigest()
        self._identity = f"{self.path.name}:{digest[:16]}"

    @property
    def label_names(self) -> tuple[str, ...]:
        return self._label_names

    @functools.cached_property
    def joint_limits(self) -> JointLimits:
        """The joint limits of the rows it replays, as ``posesynth train`` computes a checkpoint's
        (``JointLimits.from_poses``): what ``augment.mutation`` keeps mutated poses within."""
        return JointLimits.from_poses(axis_angle_to_matrix(self._pose))

    @property
    def identity(self) -> str:
        """``store name:first 16 hex digits of the sha256 of its attributes``."""
        return self._identity

    def __len__(self) -> int:
        return self._pose.shape[0]

    def sample(self, n: int, generator: torch.Generator, label: int | None = None,
               device: torch.device | str = "cpu") -> PoseBatch:
        """``n`` rows drawn uniformly (of ``label`` only, when given); rotations (n, 24, 3, 3)."""
        pool = None if label is None else torch.nonzero(self._labels == label).squeeze(1)
        if pool is not None and len(pool) == 0:
            raise PoseSourceError(f"{self.path}: no {self.options['split']!r} rows with label "
                                  f"{self._label_names[label]!r}")
        size = len(self) if pool is None else len(pool)
        rows = torch.randint(size, (n,), generator=generator)
        if pool is not None:
            rows = pool[rows]
        rotmats = axis_angle_to_matrix(self._pose[rows])
        rotmats[:, 0] = remove_yaw(rotmats[:, 0])
        return PoseBatch(rotmats.to(device), self._betas[rows].to(device), self._labels[rows].to(device))

