"""Where sampled poses come from: the interface between pose generators and ``sample``.

A *pose source* turns random numbers into body poses on SMPL's tree.  The GAN
checkpoint (``posesynth.gan.checkpoint``) is one; the training store replayed
(``posesynth.pose_source.StorePoseSource``) is another, used for real-pose baselines.

Determinism contract: a source draws every random number it needs from the
``torch.Generator`` it is given, on the CPU, in an order that depends only on ``n``
(never on the device or on how the caller batches), so the same generator state
gives the same poses.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from posesynth.body_prior import body_model_prior
from posesynth.errors import PosesynthError
from posesynth.kinematics import remove_yaw
from posesynth.rotations import axis_angle_to_matrix
from posesynth.skeleton import NUM_JOINTS
from posesynth.store import open_store, split_rows


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
    """Anything ``sample`` can draw poses from."""

    @property
    def label_names(self) -> tuple[str, ...]:
        """Vocabulary of the labels a caller may condition on (may be empty)."""

    @property
    def identity(self) -> str:
        """Short, stable identifier of what the poses come from (a file name and a hash)."""

    def sample(self, n: int, generator: torch.Generator, label: int | None = None,
               device: torch.device | str = "cpu") -> PoseBatch:
        """Draw ``n`` poses; ``label`` conditions on one label (None: any)."""


# ---------------------------------------------------------------------------- replaying real poses
BETAS_POLICIES = ("store", "prior")


class StorePoseSource:
    """Real poses replayed from a ``prepare`` training store (a ``PoseSource``).

    Each draw picks rows of ``split`` ("train", "val" or "all") uniformly at random,
    with replacement.  The global orientation has its yaw removed (the body faces +z,
    as the GAN's poses do); ``betas`` are the row's own (``"store"``) or drawn from
    SMPL's prior (``"prior"``, ``body_prior.body_model_prior``).  ``label_names`` is the
    vocabulary of ``label_field``; the returned labels are each row's own label.

    This is the "real poses through random cameras" baseline, and the source the tests use.
    ``path`` and ``options`` rebuild it elsewhere (``load_pose_source(path, **options)``).
    """

    def __init__(self, path: str | Path, split: str = "train", betas: str = "store",
                 label_field: str = "content") -> None:
        self.path = Path(path)
        self.options = {"split": split, "betas": betas, "label_field": label_field}
        if betas not in BETAS_POLICIES:
            raise PoseSourceError(f"betas must be one of {BETAS_POLICIES}, got {betas!r}")
        group = open_store(self.path, kind="training")
        labels = group.attrs["labels"]
        if label_field not in labels:
            raise PoseSourceError(f"{self.path}: no label field {label_field!r}; it has {sorted(labels)}")
        rows = split_rows(group, split, self.path)
        pose = np.concatenate([group["global_orient"][:], group["body_pose"][:]], axis=1)[rows]
        self._pose = torch.as_tensor(pose).reshape(-1, NUM_JOINTS, 3)  # (N, 24, 3) axis-angle
        self._betas = torch.as_tensor(group["betas"][:][rows])  # (N, K)
        self._labels = torch.as_tensor(group[label_field][:][rows].astype(np.int64))  # (N,)
        self._label_names = tuple(labels[label_field])
        self.label_field = label_field
        self.body_model: str = group.attrs["body_model"]
        digest = hashlib.sha256(json.dumps(dict(group.attrs), sort_keys=True).encode()).hexdigest()
        self._identity = f"{self.path.name}:{digest[:16]}"

    @property
    def label_names(self) -> tuple[str, ...]:
        return self._label_names

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
        betas = self._betas[rows]
        if self.options["betas"] == "prior":
            betas = body_model_prior(betas.shape[1]).sample(n, generator)
        return PoseBatch(rotmats.to(device), betas.to(device), self._labels[rows].to(device))


def load_pose_source(path: str | Path, **options) -> PoseSource:
    """The pose source stored at ``path``: a GAN checkpoint (``.pt``) or a training store
    (a ``prepare`` Zarr store, replayed by ``StorePoseSource(path, **options)``)."""
    path = Path(path)
    if path.suffix == ".pt":
        if options:
            raise PoseSourceError(f"{path}: a checkpoint takes no source options, got {sorted(options)}")
        try:
            from posesynth.gan.checkpoint import load_checkpoint
        except ImportError as exc:
            raise PoseSourceError(f"{path}: this posesynth cannot read GAN checkpoints ({exc})") from None
        return load_checkpoint(path)
    if (path / "zarr.json").is_file() or (path / ".zgroup").is_file():
        return StorePoseSource(path, **options)
    if not path.exists():
        raise PoseSourceError(f"{path}: no such checkpoint or training store")
    raise PoseSourceError(f"{path}: not a pose source (expected a GAN checkpoint .pt or a training store .zarr)")
