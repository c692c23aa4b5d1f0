"""The pose source stored at a path: a GAN checkpoint or a training store.

Kept apart from the interface (``posesynth.pose_source``), which the sources themselves
import: this module imports them, so nothing imports back.
"""

from __future__ import annotations

from pathlib import Path

from posesynth.gan.checkpoint import load_checkpoint
from posesynth.pose_source import PoseSource, PoseSourceError, StorePoseSource


def load_pose_source(path: str | Path, **options) -> PoseSource:
    """The pose source stored at ``path``: a GAN checkpoint (``.pt``) or a training store
    (a ``prepare`` Zarr store, replayed by ``StorePoseSource(path, **options)``)."""
    path = Path(path)
    if path.suffix == ".pt":
        if options:
            raise PoseSourceError(f"{path}: a checkpoint takes no source options, got {sorted(options)}")
        return load_checkpoint(path)
    if (path / "zarr.json").is_file() or (path / ".zgroup").is_file():
        return StorePoseSource(path, **options)
    if not path.exists():
        raise PoseSourceError(f"{path}: no such checkpoint or training store")
    raise PoseSourceError(f"{path}: not a pose source (expected a GAN checkpoint .pt or a training store .zarr)")
