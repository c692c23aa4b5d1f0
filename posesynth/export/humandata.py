"""The ``humandata`` export (sample stores): an MMHuman3D HumanData file (``.npz``).

MMHuman3D (open-mmlab/mmhuman3d, ``docs/human_data.md``) keeps every dataset as a HumanData
``.npz``; this writes one the way its own dataset converters do, so that ``HumanData.fromfile``
reads it and ``HumanImageDataset(convention=...)`` trains on it with no code: keypoints in
MMHuman3D's ``human_data`` convention (190 keypoints, by name), compressed by their masks (only
the keypoints the file has are stored, in ``human_data`` order).

Rows: one per sample view (``posesynth.export.views``): ``M = N * V``, row ``r = sample * V + view``.
``np.load(path, allow_pickle=True)`` gives (``smpl`` and ``meta`` are pickled dicts: ``.item()``;
only load files you trust):

- ``smpl``: ``global_orient`` (M, 3), ``body_pose`` (M, 23, 3), ``betas`` (M, K), ``transl``
  (M, 3), float32 axis-angle and metres, in the row's camera frame (OpenCV axes): the body model
  posed with them gives the row's 3D keypoints.  ``meta["shape_space"]`` says what the betas
  mean (posesynth's own shape space unless the store was sampled with a real SMPL model).
- ``keypoints2d`` (M, J2, 3) float32: the 2D set (``--keypoint-set-2d``, else ``--keypoint-set``;
  ``--noisy``: the noisy 2D) in pixels, and a confidence: 1 for a keypoint in the image, 0
  outside it (where MMHuman3D reads COCO's ``v > 0`` as 1).
- ``keypoints3d`` (M, J3, 4) float32: the 3D set (``--keypoint-set``) in the row's camera frame,
  metres (not root-centred), confidence 1.
- ``keypoints2d_mask``, ``keypoints3d_mask`` (190,) uint8: which ``human_data`` keypoints the file
  has; the J columns are those keypoints in ``human_data`` order, which ``meta["keypoints2d"]``
  / ``meta["keypoints3d"]`` list by posesynth's names (``names``) with the convention to train
  with (``convention``: MMHuman3D's ``smpl``, ``h36m`` or ``coco``).
- ``keypoints2d_convention``, ``keypoints3d_convention``: ``"human_data"``; ``__keypoints_compressed__``
  (True) and ``__key_strict__`` (False): HumanData's bookkeeping (the row count, which HumanData
  keeps as ``__temporal_len__`` or, since 2023, ``__data_len__``, it finds from the arrays).
- ``bbox_xywh`` (M, 5) float32: ``x, y, w, h`` of the box around the labelled 2D keypoints (1.2
  times wider, clipped to the image) and a confidence, 0 for a row with none in the image.
- ``image_path`` (M,) str: placeholders, ``00000042_view1.png`` (posesynth renders no images).
- ``config``: ``"posesynth"``; ``meta``: ``gender`` (``"neutral"``), ``source`` (what the store
  was sampled from), ``shape_space``, ``views`` (V), ``keypoints2d``, ``keypoints3d``.

Every array but ``smpl`` is written one store chunk at a time; ``smpl`` is a pickled dict and
so is held whole (340 bytes per row).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr

from posesynth.export import ExportOptions
from posesynth.export.arrays import npy_member, write_npy
from posesynth.export.views import (
    check_sample_store, image_name, keypoint_boxes, keypoint_set, pixels_array, rows, view_chunks,
)
from posesynth.outputs import atomic_output
from posesynth.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from posesynth.stores.samples import LABEL_PATH, VISIBLE_IN_FRAME, camera_path, keypoints_path, smpl_path

HUMAN_DATA_SIZE = 190  # keypoints in MMHuman3D's human_data convention
# posesynth's keypoint sets in MMHuman3D: the convention to train with, and the human_data
# index of each keypoint in the set's order, matched by name as MMHuman3D converts (its
# mmhuman3d/core/conventions/keypoints_mapping/, unchanged since 2022: human_data.py's 190
# names; smpl.py SMPL_KEYPOINTS; h36m.py H36M_KEYPOINTS, whose pelvis, hips, spine, thorax
# (neck_extra), neck_nose (head_extra) and head (headtop) are Human3.6M's own "*_extra" points;
# coco.py COCO_KEYPOINTS, whose hips are left_hip_extra and right_hip_extra too).
CONVENTIONS: dict[str, tuple[str, tuple[int, ...]]] = {
    "smpl24": ("smpl", tuple(range(22)) + (188, 189)),
    "h36m17": ("h36m", (148, 144, 5, 8, 145, 4, 7, 150, 146, 152, 147, 16, 18, 20, 17, 19, 21)),
    "coco17": ("coco", (55, 57, 56, 59, 58, 16, 17, 18, 19, 20, 21, 145, 144, 4, 5, 7, 8)),
}


def export_humandata(group: zarr.Group, out: Path, options: ExportOptions) -> list[Path]:
    """A HumanData ``.npz`` of every sample view at ``out`` (see the module)."""
    check_sample_store(group, "humandata")
    set_2d = _checked_set(group, options.set_2d, "--keypoint-set-2d" if options.keypoint_set_2d else "--keypoint-set")
    set_3d = _checked_set(group, options.keypoint_set, "--keypoint-set")
    pixels = pixels_array(group, set_2d.name, options)
    N, V = group[camera_path("K")].shape[:2]
    M = N * V
    with (atomic_output(out, options.overwrite) as tmp,
          zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf):
        for name, value in _header(group, set_2d, set_3d, V).items():
            _write_value(zf, name, value)
        write_npy(zf, "keypoints2d", np.float32, (M, len(set_2d.columns), 3), _keypoints2d(group, set_2d, pixels))
        write_npy(zf, "keypoints3d", np.float32, (M, len(set_3d.columns), 4), _keypoints3d(group, set_3d))
        write_npy(zf, "bbox_xywh", np.float32, (M, 5), _boxes(group, set_2d.name, pixels))
        write_npy(zf, "image_path", f"<U{len(image_name(N, V))}", (M,), _image_paths(group, V))
        _write_value(zf, "smpl", _smpl(group))
    return [out]


class _Set:
    """A keypoint set of the store as HumanData holds it: its columns in ``human_data`` order."""

    def __init__(self, name: str, joint_names: list[str]) -> None:
        self.name = name
        self.convention, index = CONVENTIONS[name]
        self.columns = np.argsort(index)  # the set's keypoints in human_data order
        self.mask = np.zeros(HUMAN_DATA_SIZE, np.uint8)
        self.mask[list(index)] = 1
        self.names = [joint_names[c] for c in self.columns]


def _checked_set(group: zarr.Group, name: str, option: str) -> _Set:
    """The store's set ``name`` (every posesynth set has its place in ``CONVENTIONS``)."""
    return _Set(name, keypoint_set(group, name, option))


def _header(group: zarr.Group, set_2d: _Set, set_3d: _Set, V: int) -> dict[str, Any]:
    """Everything but the per-row arrays: HumanData's bookkeeping, masks, conventions, meta."""
    def described(s: _Set) -> dict[str, Any]:
        return {"set": s.name, "convention": s.convention, "names": s.names}

    return {"__key_strict__": False, "__keypoints_compressed__": True,
            "config": "posesynth", "keypoints2d_mask": set_2d.mask, "keypoints3d_mask": set_3d.mask,
            "keypoints2d_convention": "human_data", "keypoints3d_convention": "human_data",
            "meta": {"gender": "neutral", "source": group.attrs["source"]["identity"],
                     "shape_space": group.attrs.get("shape_space"), "views": V,
                     "keypoints2d": described(set_2d), "keypoints3d": described(set_3d)}}


def _write_value(zf: zipfile.ZipFile, name: str, value: Any) -> None:
    """``value`` as the member ``<name>.npy``: an array as it is, anything else pickled in a
    0-d object array (how HumanData's ``np.savez`` stores dicts and scalars)."""
    if not isinstance(value, np.ndarray):
        box = np.empty((), dtype=object)
        box[()] = value
        value = box if isinstance(value, dict) else np.array(value)
    with npy_member(zf, name) as fh:
        np.lib.format.write_array(fh, value, allow_pickle=value.dtype == object)


def _keypoints2d(group: zarr.Group, s: _Set, pixels: str) -> Iterator[np.ndarray]:
    visible = keypoints_path(s.name, "visible")
    for _, chunk in view_chunks(group, [pixels, visible], "humandata keypoints2d"):
        labelled = (rows(chunk[visible]) & VISIBLE_IN_FRAME).astype(np.float32)
        yield np.concatenate([rows(chunk[pixels]), labelled[..., None]], axis=2)[:, s.columns]


def _keypoints3d(group: zarr.Group, s: _Set) -> Iterator[np.ndarray]:
    camera = keypoints_path(s.name, "camera")
    for _, chunk in view_chunks(group, [camera], "humandata keypoints3d"):
        points = rows(chunk[camera])[:, s.columns]
        yield np.concatenate([points, np.ones(points.shape[:2] + (1,), np.float32)], axis=2)


def _boxes(group: zarr.Group, set_name: str, pixels: str) -> Iterator[np.ndarray]:
    visible, size = keypoints_path(set_name, "visible"), camera_path("image_size")
    for _, chunk in view_chunks(group, [pixels, visible, size], "humandata bbox_xywh"):
        labelled = (rows(chunk[visible]) & VISIBLE_IN_FRAME) > 0  # (M, J)
        boxes = keypoint_boxes(rows(chunk[pixels]), labelled, rows(chunk[size]))
        yield np.concatenate([boxes, labelled.any(1, keepdims=True).astype(np.float32)], axis=1)


def _image_paths(group: zarr.Group, V: int) -> Iterator[list[str]]:
    for lo, chunk in view_chunks(group, [LABEL_PATH], "humandata image_path"):
        yield [image_name(sample, view) for sample in range(lo, lo + len(chunk[LABEL_PATH])) for view in range(V)]


SMPL_ARRAYS = [*(smpl_path(p) for p in ("global_orient", "body_pose", "betas", "transl")),
               keypoints_path("smpl24", "world"), camera_path("R"), camera_path("t")]


def _smpl(group: zarr.Group) -> dict[str, np.ndarray]:
    """HumanData's ``smpl`` dict, every view's row in its camera's frame."""
    parts = [camera_frame_smpl(chunk) for _, chunk in view_chunks(group, SMPL_ARRAYS, "humandata smpl")]
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def camera_frame_smpl(chunk: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """SMPL parameters of n samples (the store's ``smpl/*``, world frame) in the frames of their
    V cameras, as rows (n * V, ...): ``global_orient = R @ global_orient``; ``transl`` so that
    the root joint lands where the camera sees it, ``R @ pelvis + t - J0`` with ``J0 = pelvis -
    transl`` the rest root joint (``keypoints/smpl24/world`` gives the pelvis); ``body_pose``
    (as (23, 3)) and ``betas`` repeated for each view."""
    R = torch.as_tensor(chunk[camera_path("R")], dtype=torch.float64)  # (n, V, 3, 3)
    orient = axis_angle_to_matrix(torch.as_tensor(chunk[smpl_path("global_orient")], dtype=torch.float64))  # (n, 3, 3)
    pelvis = chunk[keypoints_path("smpl24", "world")][:, 0].astype(np.float64)  # (n, 3)
    root = pelvis - chunk[smpl_path("transl")]  # (n, 3)
    pelvis_cam = np.einsum("nvij,nj->nvi", chunk[camera_path("R")].astype(np.float64), pelvis) + chunk[camera_path("t")]
    V = R.shape[1]

    def repeated(values: np.ndarray) -> np.ndarray:
        return rows(np.repeat(values[:, None], V, axis=1))

    return {"global_orient": rows(matrix_to_axis_angle(R @ orient[:, None]).numpy()).astype(np.float32),
            "body_pose": repeated(chunk[smpl_path("body_pose")].reshape(-1, 23, 3)),
            "betas": repeated(chunk[smpl_path("betas")]),
            "transl": rows(pelvis_cam - root[:, None]).astype(np.float32)}
