"""The ``videopose3d`` export (sample stores): the two files VideoPose3D's data loaders read,
  ``data_3d_<name>.npz`` with ``positions_3d`` and ``data_2d_<name>_<keypoints>.npz`` with
  ``positions_2d`` and ``metadata``, in VideoPose3D's layout: dicts of dicts, subject -> action
  -> array.  All samples are one pseudo-subject, ``synthetic``, with one action per label (``all``
  for unconditioned samples); ``positions_3d[s][a]`` is (T, J, 3) world metres and
  ``positions_2d[s][a]`` a list with one (T, J, 2) pixel array per view.  The 3D file also holds
  ``positions_3d_camera`` (per view, camera frame), ``cameras`` (per view: K, R, t, distortion,
  image_size) and ``sample_index`` (each row's index in the store), which VideoPose3D ignores.
  Like VideoPose3D's own files these dicts are *pickled* object arrays: reading them needs
  ``np.load(path, allow_pickle=True)``, so only load files you trust.  Samples are independent
  poses, not video: the "frames" of an action are unrelated, so use single-frame models.
  This format holds one keypoint set's arrays in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import zarr

from posesynth.export import ExportError, ExportOptions
from posesynth.outputs import atomic_output, check_output
from posesynth.store import ATTR

SUBJECT = "synthetic"
UNLABELLED = "all"


def export_videopose3d(group: zarr.Group, out: Path, options: ExportOptions) -> list[Path]:
    """VideoPose3D's ``data_3d_<name>.npz`` and ``data_2d_<name>_gt.npz`` (``_noisy`` with noisy 2D)
    in the folder ``out``."""
    keypoint_set, noisy, name, overwrite = options.keypoint_set, options.noisy, options.name, options.overwrite
    if group.attrs[ATTR].get("kind") != "samples":
        raise ExportError("videopose3d export needs a sample store (2D keypoints and cameras); "
                          f"this is a {group.attrs[ATTR].get('kind')} store: use --format npz or h5")
    sets = group.attrs["keypoint_sets"]
    if keypoint_set not in sets:
        raise ExportError(f"the store has no keypoint set {keypoint_set!r}; it has {', '.join(sets)}")
    prefix = f"keypoints/{keypoint_set}"
    pixels = f"{prefix}/pixels_noisy" if noisy else f"{prefix}/pixels"
    if pixels not in group:
        raise ExportError(f"the store has no noisy 2D ({pixels}); sample with noise = true")
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} is a file; videopose3d export writes two files into a folder")
    path_3d = check_output(out / f"data_3d_{name}.npz", overwrite)
    path_2d = check_output(out / f"data_2d_{name}_{'noisy' if noisy else 'gt'}.npz", overwrite)
    actions = _actions(group["label"][:], group.attrs.get("labels", []))
    world, cam2d, cam3d = group[f"{prefix}/world"][:], group[pixels][:], group[f"{prefix}/camera"][:]
    cams = {k: group[f"camera/{k}"][:] for k in ("K", "R", "t", "distortion", "image_size")}
    V = cam2d.shape[1]
    data_3d = {
        "positions_3d": {SUBJECT: {a: world[rows] for a, rows in actions.items()}},
        "positions_3d_camera": {SUBJECT: {a: _per_view(cam3d, rows) for a, rows in actions.items()}},
        "cameras": {SUBJECT: {a: [{k: c[rows, v] for k, c in cams.items()} for v in range(V)]
                              for a, rows in actions.items()}},
        "sample_index": {SUBJECT: actions},
    }
    meta = _metadata(keypoint_set, sets[keypoint_set]["joint_names"], group.attrs.get("recipe", {}))
    data_2d = {"positions_2d": {SUBJECT: {a: _per_view(cam2d, rows) for a, rows in actions.items()}},
               "metadata": meta}
    for path, data in ((path_3d, data_3d), (path_2d, data_2d)):
        with atomic_output(path, overwrite) as tmp:
            np.savez_compressed(tmp, **{k: _pickled(v) for k, v in data.items()})
    return [path_3d, path_2d]


def _per_view(values: np.ndarray, rows: np.ndarray) -> list[np.ndarray]:
    """(N, V, ...) -> one (T, ...) array per view for the ``rows`` of an action."""
    return [values[rows, v] for v in range(values.shape[1])]


def _pickled(value: Any) -> np.ndarray:
    """A 0-d object array holding ``value`` (how VideoPose3D's files store their dicts)."""
    box = np.empty((), dtype=object)
    box[()] = value
    return box


def _actions(labels: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """Action name -> the rows (sorted) of each label; unlabelled rows (-1) are ``all``."""
    out = {}
    for code in np.unique(labels):
        name = names[code] if 0 <= code < len(names) else UNLABELLED
        out[name] = np.flatnonzero(labels == code)
    return out


def _metadata(set_name: str, joint_names: list[str], recipe: dict[str, Any]) -> dict[str, Any]:
    """VideoPose3D's 2D metadata: layout, joint count, left/right symmetry, plus joint names."""
    index = {n: i for i, n in enumerate(joint_names)}
    left = [i for i, n in enumerate(joint_names) if n.startswith("left_") and "right_" + n[5:] in index]
    right = [index["right_" + joint_names[i][5:]] for i in left]
    size = recipe.get("camera", {}).get("image_size")
    return {"layout_name": {"h36m17": "h36m", "coco17": "coco"}.get(set_name, set_name),
            "num_joints": len(joint_names), "keypoints_symmetry": [left, right], "joint_names": joint_names,
            "image_size": size}

