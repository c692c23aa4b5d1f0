"""Resume bookkeeping: the run's attributes in the store, creating the store or reopening an
interrupted one (checked to be the same run), and recording each finished shard.

Each finished shard is recorded in the attribute ``shards_done`` (Zarr writes its metadata
files atomically, so this survives SIGKILL); a resumed run recomputes only the missing shards.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import zarr

from posesynth.body_model import BodyModel, shape_space
from posesynth.cameras import CAMERA_CONVENTION
from posesynth.errors import os_reason
from posesynth.gan.checkpoint import DEFAULT_CHECKPOINT
from posesynth.keypoint_sets import keypoint_sets
from posesynth.pose_source import PoseSource
from posesynth.run_record import run_record
from posesynth.sample_recipe import SampleRecipe
from posesynth.sampling.errors import SampleError
from posesynth.sampling.layout import Layout
from posesynth.skeleton import SMPL_JOINT_NAMES, SMPL_PARENTS
from posesynth.store import (
    ATTR, StoreError, StoreTarget, create_array, create_store, incomplete_store_error, open_group, open_store,
)
from posesynth.stores.arrays import Shapes
from posesynth.stores.samples import KIND, VISIBILITY, dimension_names


def store_attrs(source: PoseSource, recipe: SampleRecipe, seed: int, body: BodyModel, out: Path,
                device: torch.device) -> dict[str, Any]:
    """The group attributes of the sample store at ``out`` (docs/sample_store.md), bar ``posesynth``."""
    return {
        "recipe": recipe.to_dict(),
        "seed": seed,
        "source": {"identity": source.identity, "path": source_path(getattr(source, "path", None), out),
                   "sha256": getattr(source, "sha256", None), "label_field": getattr(source, "label_field", None)},
        "labels": list(source.label_names),
        "keypoint_sets": {s.name: s.to_attrs() for s in keypoint_sets(recipe.sample.keypoint_sets)},
        "skeleton": {"joint_names": list(SMPL_JOINT_NAMES), "parents": list(SMPL_PARENTS)},
        "camera_convention": CAMERA_CONVENTION,
        "visibility": VISIBILITY,
        "units": {"3d": "metres", "2d": "pixels", "angles": "radians (axis-angle)"},
        "body_model": body.identity,
        "shape_space": shape_space(body),
        "block_size": recipe.sample.block_size,
        "shards_done": [],
        "run": run_record(device),
    }


def source_path(path: str | Path | None, out: Path) -> str | None:
    """Where the source at ``path`` is, for the store at ``out``: relative to the folder holding
    the store (``../train.zarr``, POSIX separators); None without a path, for posesynth's shipped
    checkpoint (its identity and hash name it) and where no relative path exists (another drive)."""
    if path is None or Path(path).resolve() == DEFAULT_CHECKPOINT.resolve():
        return None
    try:
        return Path(os.path.relpath(Path(path).resolve(), out.resolve().parent)).as_posix()
    except ValueError:
        return None


_RUN_KEYS = ("recipe", "seed", "source", "body_model", "block_size")


def canonical(value: Any) -> str:
    """``value`` (JSON) as one string, keys sorted: equal strings for equal values."""
    return json.dumps(value, sort_keys=True, default=str)


def open_for_writing(target: StoreTarget, attrs: dict[str, Any], shapes: Shapes, layout: Layout,
                     zarr_format: int) -> tuple[zarr.Group, set[int]]:
    """At ``target.path``: a new store with every array of ``shapes`` created, or (resume) the
    existing one, checked to be the same run (``attrs``, ``layout.n``, ``zarr_format``), and its
    shards done."""
    path = target.path
    if not target.resume:
        group = create_store(path, KIND, attrs, zarr_format=zarr_format, meta={"num_samples": layout.n})
        _create_arrays(path, group, shapes, layout, set())
        return group, set()
    group = open_store(path, kind=KIND, allow_incomplete=True)
    _check_same_run(path, group, attrs, layout.n, zarr_format)
    remove_partial_files(path)
    group = open_group(path, mode="r+")
    done = set(group.attrs["shards_done"])
    _create_arrays(path, group, shapes, layout, done)
    return group, done


def _create_arrays(path: Path, group: zarr.Group, shapes: Shapes, layout: Layout, done: set[int]) -> None:
    """Create every array of ``shapes`` the store lacks (a resumed run stopped while creating them)."""
    missing = [name for name in shapes if name not in group]
    if missing and done:
        raise incomplete_store_error(path, "arrays", missing)
    try:
        for name in missing:
            tail, dtype = shapes[name]
            create_array(group, name, (layout.n,) + tail, dtype, layout.chunk, layout.shard, dims=dimension_names(name))
    except OSError as exc:
        raise StoreError(disk_error(StoreTarget(path, path), exc)) from exc


def remove_partial_files(out: Path) -> None:
    """Delete the temporary files a killed writer leaves (Zarr and ``posesynth.shard_file`` write
    ``<key>.<uuid hex>.partial`` and rename it into place)."""
    try:
        for f in out.rglob("*.partial"):
            if re.fullmatch(r".*\.[0-9a-f]{32}\.partial", f.name):
                f.unlink(missing_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot resume {out}: cannot remove the temporary files of the interrupted run: "
                         f"{os_reason(exc)}") from None


_MISSING = object()


def _check_same_run(out: Path, group: zarr.Group, attrs: dict[str, Any], n: int, zarr_format: int) -> None:
    """Refuse to resume a store written with other arguments (``attrs``, ``n`` rows,
    ``zarr_format``), naming the first that differs."""
    recorded = dict(group.attrs)
    missing = [key for key in (*_RUN_KEYS, "shards_done") if key not in recorded]
    missing += [f"{ATTR}.num_samples"] if "num_samples" not in recorded[ATTR] else []
    if missing:
        raise incomplete_store_error(out, "attributes", missing)
    for key in _RUN_KEYS:
        diff = _first_difference(recorded[key], attrs[key], key)
        if diff is not None:
            name, was, now = diff
            raise SampleError(f"{out}: cannot resume: its {key} differs from this run's ({name} is {_shown(was)} in "
                              f"the store, {_shown(now)} in this run); resume with the same arguments, or pass "
                              "--overwrite")
    if recorded[ATTR]["num_samples"] != n:
        raise SampleError(f"{out}: cannot resume: it holds {recorded[ATTR]['num_samples']} samples, "
                          f"this run asks for {n}")
    if group.metadata.zarr_format != zarr_format:
        raise SampleError(f"{out}: cannot resume: it is Zarr v{group.metadata.zarr_format}, not v{zarr_format}")


def _first_difference(was: Any, now: Any, key: str) -> tuple[str, Any, Any] | None:
    """The dotted key and both values of the first leaf that differs between two JSON values."""
    if isinstance(was, dict) and isinstance(now, dict):
        for k in sorted(set(was) | set(now)):
            diff = _first_difference(was.get(k, _MISSING), now.get(k, _MISSING), f"{key}.{k}")
            if diff is not None:
                return diff
        return None
    return None if canonical(was) == canonical(now) else (key, was, now)


def _shown(value: Any) -> str:
    return "not set" if value is _MISSING else canonical(value)[:200]


def shard_recorder(group: zarr.Group, done: set[int]) -> Callable[[int], None]:
    """A callback recording a written shard in the attribute ``shards_done`` (an atomic file write)."""
    def mark(shard: int) -> None:
        done.add(shard)
        group.attrs["shards_done"] = sorted(done)
    return mark


def disk_error(target: StoreTarget, exc: OSError) -> str:
    """The message for a failed write of the store at ``target``: what is left where, and how to finish."""
    where = (f"the new store is left incomplete at {target.path} and the old one at {target.final} untouched"
             if target.replacing else "the store is left marked incomplete")
    return (f"cannot write {target.path}: {os_reason(exc)}; {where} (free space or fix the path, then run "
            "again with --resume)")

