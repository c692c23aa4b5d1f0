"""The training store's layout (``ARRAYS``) and its splits: rows of a split, why a file is held out.

``posesynth prepare`` writes these arrays (one row per mocap frame); every reader finds them
through ``smpl_path``, ``label_path`` and the ``*_PATH`` names (its poses, as the GAN trains on
them: ``posesynth.stores.training_poses``).  The training store keeps SMPL parameters at the
top of the group (a sample store has them under ``smpl/``) and one int32 code array per label
field, whose vocabulary is the attribute ``labels.<field>``.

Shapes: N frames, K betas (the body model's).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import zarr

from posesynth.skeleton import NUM_JOINTS
from posesynth.store import StoreError
from posesynth.stores.arrays import ArraySpec

KIND = "training"
SPLITS = ("train", "val")  # the codes of the array ``split``
LABEL_FIELDS = ("source", "subject", "content", "style", "file")
SMPL_PARAMS = ("global_orient", "body_pose", "betas", "transl")
JOINTS_PATH = "joints"
FRAME_PATH = "frame"
SPLIT_PATH = "split"

# The type of each group attribute, as readers rely on it: name -> type, or (type, type of each
# entry).  ``posesynth.stores.checked_arrays`` holds a store to it.
ATTRIBUTES = {"body_model": str, "shape_space": dict, "run": dict, "skeleton": dict, "rotation_format": str,
              "units": dict, "labels": (dict, list), "splits": (list, str), "split_rule": dict, "skipped": list,
              "retarget": dict}

ARRAYS: tuple[ArraySpec, ...] = (
    ArraySpec("global_orient", (3,), "float32", ("sample", "axis_angle")),
    ArraySpec("body_pose", (69,), "float32", ("sample", "pose_param")),
    ArraySpec("betas", ("K",), "float32", ("sample", "beta")),
    ArraySpec("transl", (3,), "float32", ("sample", "xyz")),
    ArraySpec(JOINTS_PATH, (NUM_JOINTS, 3), "float32", ("sample", "joint", "xyz")),
    ArraySpec(FRAME_PATH, (), "int32", ("sample",)),
    ArraySpec(SPLIT_PATH, (), "uint8", ("sample",)),
    *(ArraySpec(field, (), "int32", ("sample",)) for field in LABEL_FIELDS),
)
_BY_PATH = {spec.path: spec for spec in ARRAYS}


def smpl_path(param: str) -> str:
    """The array of SMPL parameter ``param`` (``SMPL_PARAMS``): ``<param>``, at the top of the group."""
    if param not in SMPL_PARAMS:
        raise KeyError(f"{param!r} is not an SMPL parameter; they are {', '.join(SMPL_PARAMS)}")
    return param


def label_path(field: str) -> str:
    """The code array (N,) int32 of label field ``field`` (``LABEL_FIELDS``): ``<field>``."""
    if field not in LABEL_FIELDS:
        raise KeyError(f"{field!r} is not a training-store label field; they are {', '.join(LABEL_FIELDS)}")
    return field


def dimension_names(path: str) -> tuple[str, ...]:
    """The axis names of the array at ``path``, the sample axis (one frame per row) first."""
    return _BY_PATH[path].dims


def split_rows(group: zarr.Group, split: str, where: str | Path) -> np.ndarray:
    """Row indices (M,) int, sorted, of a training store's ``split`` (one of its ``splits`` attribute,
    e.g. "train" or "val"; "all": every row).  An unknown or empty split is a StoreError
    naming ``where`` (the store's path)."""
    if split == "all":
        return np.arange(group[SPLIT_PATH].shape[0])
    splits = group.attrs["splits"]
    if split not in splits:
        raise StoreError(f"{where}: split must be 'all' or one of {splits}, got {split!r}")
    rows = np.flatnonzero(group[SPLIT_PATH][:] == splits.index(split))
    if len(rows) == 0:
        raise StoreError(f"{where}: the {split!r} split is empty")
    return rows


HELD_OUT = ("unseen actor", "unseen class", "unseen file")


def file_labels(group: zarr.Group, field: str) -> list[str]:
    """Per file index of a training store: the name of its ``field`` label (a file's frames share
    it: "subject", "content", ...); "" for a file index no row has."""
    names = group.attrs["labels"][field]
    file_idx, first = np.unique(group[label_path("file")][:], return_index=True)
    out = [""] * len(group.attrs["labels"]["file"])
    for i, code in zip(file_idx, group[label_path(field)][:][first]):
        out[i] = str(names[code])
    return out


def held_out_categories(group: zarr.Group) -> list[str]:
    """Per file index of a training store: why a validation file is held out (``HELD_OUT``:
    its actor is a validation subject, else its class a validation class, else the file was
    drawn on its own), from the store's ``split_rule``; meaningful for validation files only."""
    rule = group.attrs["split_rule"]
    subject, content = np.asarray(file_labels(group, "subject")), np.asarray(file_labels(group, "content"))
    category = np.where(np.isin(subject, rule["val_subjects"]), HELD_OUT[0],
                        np.where(np.isin(content, rule["val_contents"]), HELD_OUT[1], HELD_OUT[2]))
    return [str(c) if s else "" for s, c in zip(subject, category)]
