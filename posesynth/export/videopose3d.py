"""The ``videopose3d`` export (sample stores), and what VideoPose3D's file family shares with ``h36m``.

VideoPose3D (facebookresearch/VideoPose3D: ``data/prepare_data_h36m.py``, ``run.py``) and the
trainers built on it (PoseFormer, MixSTE, MHFormer, P-STMO, ...) read two ``.npz`` files of
*pickled* dicts, subject -> action -> arrays: ``data_3d_<dataset>.npz`` (``positions_3d``) and
``data_2d_<dataset>_<keypoints>.npz`` (``positions_2d``, one array per camera, and ``metadata``).
Loading them needs ``np.load(path, allow_pickle=True)``: only load files you trust.  Samples are
independent poses, not video: the "frames" of an action are unrelated, so use single-frame models
(``-arc 1,1,1``).

Shared by both formats (``posesynth/export/h36m.py`` is the other):

- **Subjects.** The last ``round(N * test_fraction)`` rows of the store are the test subjects and
  the rest the training ones (a sample store has no split of its own, and its rows are
  independent draws, so the last rows are as good a held-out set as any and are read in whole
  chunks); each group of rows is cut into equal consecutive runs, one per subject.
- **Actions.** Within a subject, one action per label (the store's ``labels`` vocabulary),
  ``all`` for unlabelled rows; ``sample_index[subject][action]`` (T,) gives each frame's store row.
- **Streaming.** The store is read one chunk at a time (``views.view_chunks``: a progress bar on
  a terminal) and each chunk's rows are copied into arrays allocated once per (subject, action),
  one file at a time.  What stays in memory is one file's arrays: a pickled dict can only be
  written whole, so every array of it exists when it is saved (plus, while saving, the pickled
  bytes of one array at a time).

``--format videopose3d`` keeps posesynth's own cameras (each sample has its own):

- ``data_3d_<name>.npz``: ``positions_3d[subject][action]`` (T, J, 3), the 3D keypoint set in
  posesynth's world (metres, +y up); ``cameras[subject][action]``, one dict per view of ``K``
  (T, 3, 3), ``R`` (T, 3, 3), ``t`` (T, 3), ``distortion`` (T, 4), ``image_size`` (T, 2) (OpenCV:
  ``x_cam = R @ x_world + t``); ``sample_index``; and plain arrays that describe it (no pickle
  needed): ``keypoint_set``, ``joint_names``, ``parents`` (-1 for every joint of a set without
  a tree), ``joints_left``, ``joints_right``, ``units``, ``up_axis``, ``frame``.
- ``data_2d_<name>_<set2d>.npz`` (``..._<set2d>_noisy.npz`` for the noisy 2D): ``positions_2d
  [subject][action]``, a list of V (T, J2, 2) pixel arrays of the 2D keypoint set, which may
  differ from the 3D one (COCO 2D with Human3.6M 3D); ``metadata``: VideoPose3D's
  ``layout_name``, ``num_joints``, ``keypoints_symmetry``, plus ``keypoint_set``,
  ``joint_names``, ``keypoint_set_3d``, ``noisy`` and ``video_metadata`` ({subject: {w, h}}).
  The plain arrays ``keypoint_set`` and ``joint_names`` say the same without pickle.
- ``data_2d_custom_<name>_<set2d>.npz``: the same 2D as VideoPose3D's ``-d custom`` reads it, one
  "video" per subject, action and view (``<subject>.<action>.view<v>``, action ``custom``, one
  camera) with ``video_metadata``, for ``run.py -d custom -k <name>_<set2d> --evaluate ...
  --render``.

Subjects are ``train`` and ``test``.  ``docs/videopose3d.md`` has the small dataset class that
VideoPose3D's ``run.py`` needs for these files.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from posesynth.export import ExportError, ExportOptions
from posesynth.export.views import check_sample_store, keypoint_set, pixels_array, view_chunks
from posesynth.outputs import atomic_output, check_output
from posesynth.stores.arrays import read_array
from posesynth.stores.samples import CAMERA_PARAMS, LABEL_PATH, camera_path, keypoints_path, num_views

TRAIN_SUBJECTS, TEST_SUBJECTS = ("train",), ("test",)
UNLABELLED = "all"
CAMERA_KEYS = CAMERA_PARAMS  # the file keeps every camera array of the store, per view

Rows = dict[str, dict[str, np.ndarray]]  # subject -> action -> sorted store rows (T,)


# ---------------------------------------------------------------------------- checks
def check_request(group: zarr.Group, out: Path, options: ExportOptions, fmt: str) -> None:
    """ExportError unless ``group`` is a sample store with the keypoint sets asked for, ``out``
    can be a folder and the name and test fraction are usable."""
    check_sample_store(group, fmt)
    keypoint_set(group, options.keypoint_set, "--keypoint-set")
    keypoint_set(group, options.set_2d, "--keypoint-set-2d")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", options.name):
        raise ExportError(f"--name {options.name!r}: use letters, digits, '_', '.' or '-' (it is part of file names)")
    if not 0.0 < options.test_fraction < 1.0:
        raise ExportError(f"--test-fraction must be between 0 and 1 (exclusive), got {options.test_fraction}")
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} is a file; --format {fmt} writes its files into a folder")


# ---------------------------------------------------------------------------- subjects, actions
def subject_rows(labels: np.ndarray, names: list[str], test_fraction: float,
                 train: tuple[str, ...], test: tuple[str, ...]) -> Rows:
    """Subject -> action -> store rows: the last ``round(N * test_fraction)`` rows to the ``test``
    subjects, the others to ``train``, each cut into equal consecutive runs (labels (N,))."""
    n = len(labels)
    n_test = round(n * test_fraction)
    if n_test < len(test) or n - n_test < len(train):
        raise ExportError(f"{n} samples with --test-fraction {test_fraction} leave {n - n_test} for "
                          f"{len(train)} training and {n_test} for {len(test)} test subjects; each needs one")
    out: Rows = {}
    for subjects, lo, hi in ((train, 0, n - n_test), (test, n - n_test, n)):
        edges = np.linspace(lo, hi, len(subjects) + 1).round().astype(np.int64)
        for subject, a, b in zip(subjects, edges[:-1], edges[1:]):
            out[subject] = _actions(labels[a:b], names, int(a))
    return out


def _actions(labels: np.ndarray, names: list[str], first: int) -> dict[str, np.ndarray]:
    """Action name -> its rows (sorted, ``first`` added) for each label; unlabelled rows (-1) are ``all``."""
    out = {}
    for code in np.unique(labels):
        out[names[code] if 0 <= code < len(names) else UNLABELLED] = first + np.flatnonzero(labels == code)
    return out


# ---------------------------------------------------------------------------- streaming
def placements(rows: Rows, lo: int, hi: int) -> Iterator[tuple[str, str, slice, np.ndarray]]:
    """``(subject, action, frames, chunk rows)`` for each action with rows in ``[lo, hi)``:
    ``frames`` is where they go in the action, ``chunk rows`` where they are in the chunk."""
    for subject, actions in rows.items():
        for action, r in actions.items():
            i, j = np.searchsorted(r, (lo, hi))
            if i < j:
                yield subject, action, slice(int(i), int(j)), r[i:j] - lo


def empty(rows: Rows, tail: tuple[int, ...], dtype: Any = np.float32) -> dict[str, dict[str, np.ndarray]]:
    """Subject -> action -> an uninitialised (T, *tail) array."""
    return {s: {a: np.empty((len(r), *tail), dtype) for a, r in actions.items()} for s, actions in rows.items()}


def per_view(views: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, list[Any]]]:
    """One subject -> action -> value structure per view -> subject -> action -> [value per view]."""
    return {s: {a: [v[s][a] for v in views] for a in actions} for s, actions in views[0].items()}


# ---------------------------------------------------------------------------- files
def save(path: Path, overwrite: bool, contents: dict[str, Any]) -> None:
    """``contents`` as a compressed ``.npz`` at ``path``, atomically: arrays as they are, anything
    else (dicts) pickled in a 0-d object array, as VideoPose3D's files hold them."""
    with atomic_output(path, overwrite) as tmp:
        np.savez_compressed(tmp, **{k: v if isinstance(v, np.ndarray) else _pickled(v) for k, v in contents.items()})


def _pickled(value: Any) -> np.ndarray:
    box = np.empty((), dtype=object)
    box[()] = value
    return box


def symmetry(joint_names: list[str]) -> tuple[list[int], list[int]]:
    """The indices of left joints and of their right partners (``left_x`` / ``right_x``)."""
    index = {n: i for i, n in enumerate(joint_names)}
    left = [i for i, n in enumerate(joint_names) if n.startswith("left_") and "right_" + n[5:] in index]
    return left, [index["right_" + joint_names[i][5:]] for i in left]


def keypoints_metadata(set_name: str, joint_names: list[str], **extra: Any) -> dict[str, Any]:
    """VideoPose3D's 2D ``metadata`` (layout, joint count, left/right symmetry), the set's name
    and joint names, and ``extra``."""
    left, right = symmetry(joint_names)
    return {"layout_name": {"h36m17": "h36m", "coco17": "coco"}.get(set_name, set_name),
            "num_joints": len(joint_names), "keypoints_symmetry": [left, right],
            "keypoint_set": set_name, "joint_names": list(joint_names), **extra}


def described(set_name: str, joint_names: list[str]) -> dict[str, np.ndarray]:
    """The plain (unpickled) arrays naming a file's keypoint set."""
    return {"keypoint_set": np.array(set_name), "joint_names": np.array(joint_names)}


# ---------------------------------------------------------------------------- the format
def export_videopose3d(group: zarr.Group, out: Path, options: ExportOptions) -> list[Path]:
    """``data_3d_<name>.npz``, ``data_2d_<name>_<set2d>[_noisy].npz`` and
    ``data_2d_custom_<name>_<set2d>[_noisy].npz`` in the folder ``out`` (module docstring)."""
    check_request(group, out, options, "videopose3d")
    pixels = pixels_array(group, options.set_2d, options)
    key = options.set_2d + ("_noisy" if options.noisy else "")
    paths = [check_output(out / name, options.overwrite) for name in
             (f"data_3d_{options.name}.npz", f"data_2d_{options.name}_{key}.npz",
              f"data_2d_custom_{options.name}_{key}.npz")]
    rows = subject_rows(read_array(group[LABEL_PATH]), group.attrs.get("labels", []), options.test_fraction,
                        TRAIN_SUBJECTS, TEST_SUBJECTS)
    _write_3d(group, rows, options, paths[0])
    _write_2d(group, rows, options, pixels, paths[1], paths[2])
    return paths


def _write_3d(group: zarr.Group, rows: Rows, options: ExportOptions, path: Path) -> None:
    """The 3D file: world keypoints, each view's cameras, store rows and the plain description."""
    world = keypoints_path(options.keypoint_set, "world")
    J, V = group[world].shape[1], num_views(group)
    camera = {k: camera_path(k) for k in CAMERA_KEYS}
    positions = empty(rows, (J, 3))
    cameras = [{k: empty(rows, group[camera[k]].shape[2:], group[camera[k]].dtype) for k in CAMERA_KEYS}
               for _ in range(V)]
    for lo, chunk in view_chunks(group, [world, *camera.values()], "videopose3d 3D"):
        for s, a, frames, src in placements(rows, lo, lo + len(chunk[world])):
            positions[s][a][frames] = chunk[world][src]
            for v, cams in enumerate(cameras):
                for k in CAMERA_KEYS:
                    cams[k][s][a][frames] = chunk[camera[k]][src, v]
    info = group.attrs["keypoint_sets"][options.keypoint_set]
    names = info["joint_names"]
    left, right = symmetry(names)
    save(path, options.overwrite, {
        "positions_3d": positions, "sample_index": rows,
        "cameras": {s: {a: [{k: c[k][s][a] for k in CAMERA_KEYS} for c in cameras] for a in actions}
                    for s, actions in rows.items()},
        **described(options.keypoint_set, names),
        "parents": np.array(info["parents"] if info["parents"] is not None else [-1] * len(names)),
        "joints_left": np.array(left), "joints_right": np.array(right),
        "units": np.array("m"), "up_axis": np.array("+y"),
        "frame": np.array("posesynth world: metres, right-handed, +y up, floor at y = 0, each sample's SMPL "
                          "pelvis joint over the origin; cameras: " + group.attrs["camera_convention"]),
    })


def _write_2d(group: zarr.Group, rows: Rows, options: ExportOptions, pixels: str, path: Path, custom: Path) -> None:
    """The 2D file (per subject and action) and the same arrays as ``-d custom`` videos."""
    J, V = group[pixels].shape[2], group[pixels].shape[1]
    views = [empty(rows, (J, 2)) for _ in range(V)]
    for lo, chunk in view_chunks(group, [pixels], "videopose3d 2D"):
        for s, a, frames, src in placements(rows, lo, lo + len(chunk[pixels])):
            for v, view in enumerate(views):
                view[s][a][frames] = chunk[pixels][src, v]
    image_size = read_array(group[camera_path("image_size")], (0, 0))  # one image size per store (its cameras')
    w, h = (int(x) for x in image_size)
    names = group.attrs["keypoint_sets"][options.set_2d]["joint_names"]
    meta = keypoints_metadata(options.set_2d, names, keypoint_set_3d=options.keypoint_set, noisy=options.noisy)
    positions = per_view(views)
    save(path, options.overwrite, {"positions_2d": positions, **described(options.set_2d, names),
                                   "metadata": {**meta, "video_metadata": {s: {"w": w, "h": h} for s in rows}}})
    videos = {f"{s}.{a}.view{v}": {"custom": [arrays[v]]} for s, actions in positions.items()
              for a, arrays in actions.items() for v in range(V)}
    save(custom, options.overwrite, {"positions_2d": videos, **described(options.set_2d, names),
                                     "metadata": {**meta, "video_metadata": {k: {"w": w, "h": h} for k in videos}}})
