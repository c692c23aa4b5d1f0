"""The ``coco`` export (sample stores): a COCO person-keypoints annotation file (JSON), as
``pycocotools.coco.COCO`` and the trainers built on it (MMPose, Detectron2, ...) read it.

One image per sample view (``posesynth.export.views``: row ``r = sample * V + view``), one person
in each; ids are ``r + 1`` for both the image and its annotation.

- ``images``: ``id``, ``file_name`` (a placeholder named after the sample and view, e.g.
  ``00000042_view1.png``: posesynth renders no images), ``width`` and ``height`` (the camera's
  image size), and posesynth's ``sample`` and ``view``.
- ``annotations``: ``keypoints``, 17 ``[x, y, v]`` in COCO's order from the store's ``coco17``
  set (clean 2D, or noisy with ``--noisy``; pixels, to 0.01 px), ``v`` from its visibility bits:
  0 outside the image (then ``x = y = 0``), 1 in the image but hidden by the body, 2 visible;
  ``num_keypoints`` (how many have ``v > 0``), ``bbox`` ``[x, y, w, h]`` around the labelled
  keypoints (widened 1.2 times, clipped to the image), ``area`` (the box's: there is no
  segmentation), ``iscrowd`` 0, ``category_id`` 1.  A person with no keypoint in the image
  has no annotation (its image stays, empty).
- ``categories``: ``person`` with COCO's keypoint names and skeleton (1-based).

Written as it is read, one store chunk at a time: memory does not grow with the store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import zarr

from posesynth import __version__
from posesynth.export import ExportError, ExportOptions
from posesynth.export.views import (
    check_sample_store, image_name, keypoint_boxes, keypoint_set, pixels_array, rows, view_chunks,
)
from posesynth.outputs import atomic_output
from posesynth.stores.samples import VISIBLE_IN_FRAME, VISIBLE_NOT_OCCLUDED, camera_path, keypoints_path

SET = "coco17"
COCO_NAMES = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
              "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
              "right_knee", "left_ankle", "right_ankle")
PERSON = 1


def coco_visibility(visible: np.ndarray) -> np.ndarray:
    """COCO's ``v`` (0 not in the image, 1 in it but occluded, 2 visible), int, from the store's
    visibility bits (any shape)."""
    in_frame = (visible & VISIBLE_IN_FRAME) > 0
    seen = (visible & VISIBLE_NOT_OCCLUDED) > 0
    return np.where(in_frame, np.where(seen, 2, 1), 0)


def export_coco(group: zarr.Group, out: Path, options: ExportOptions) -> list[Path]:
    """A COCO keypoints JSON of every sample view at ``out`` (see the module)."""
    check_sample_store(group, "coco")
    names = keypoint_set(group, SET, "--format coco")
    if tuple(names) != COCO_NAMES:
        raise ExportError(f"the store's {SET} joint names are not COCO's keypoints in COCO's order: {names}")
    pixels = pixels_array(group, SET, options)
    with atomic_output(out, options.overwrite) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        head = {"info": _info(group, options), "licenses": [], "categories": [_category(group)]}
        fh.write(json.dumps(head)[:-1])  # the object left open: the two long lists follow, streamed
        fh.write(', "images": [')
        _write_items(fh, _images(group))
        fh.write('], "annotations": [')
        _write_items(fh, _annotations(group, pixels))
        fh.write("]}")
    return [out]


def _info(group: zarr.Group, options: ExportOptions) -> dict[str, Any]:
    source = group.attrs.get("source", {}).get("identity")
    return {"description": f"posesynth synthetic keypoints ({'noisy' if options.noisy else 'clean'} 2D) "
                           f"sampled from {source}",
            "version": __version__, "url": "", "contributor": "posesynth"}


def _category(group: zarr.Group) -> dict[str, Any]:
    edges = group.attrs["keypoint_sets"][SET]["edges"]
    return {"id": PERSON, "name": "person", "supercategory": "person", "keypoints": list(COCO_NAMES),
            "skeleton": [[a + 1, b + 1] for a, b in edges]}


def _write_items(fh: IO[str], chunks: Iterator[list[dict[str, Any]]]) -> None:
    """Write the items of every chunk as one comma-separated JSON list body."""
    first = True
    for items in chunks:
        for item in items:
            fh.write(("" if first else ", ") + json.dumps(item))
            first = False


def _images(group: zarr.Group) -> Iterator[list[dict[str, Any]]]:
    for lo, chunk in view_chunks(group, [camera_path("image_size")], "coco images"):
        size = chunk[camera_path("image_size")]  # (n, V, 2)
        V = size.shape[1]
        yield [{"id": (lo + i) * V + v + 1, "file_name": image_name(lo + i, v), "width": int(size[i, v, 0]),
                "height": int(size[i, v, 1]), "sample": lo + i, "view": v}
               for i in range(len(size)) for v in range(V)]


def _annotations(group: zarr.Group, pixels: str) -> Iterator[list[dict[str, Any]]]:
    visible, size = keypoints_path(SET, "visible"), camera_path("image_size")
    for lo, chunk in view_chunks(group, [pixels, visible, size], "coco annotations"):
        V = chunk[visible].shape[1]
        v = rows(coco_visibility(chunk[visible]))  # (M, 17)
        xy = np.where(v[..., None] > 0, np.round(rows(chunk[pixels]).astype(np.float64), 2), 0.0)
        boxes = np.round(keypoint_boxes(xy, v > 0, rows(chunk[size])).astype(np.float64), 2)
        keypoints = np.concatenate([xy, v[..., None]], axis=2).reshape(len(v), -1).tolist()
        yield [{"id": lo * V + r + 1, "image_id": lo * V + r + 1, "category_id": PERSON,
                "keypoints": [int(x) if k % 3 == 2 else x for k, x in enumerate(keypoints[r])],
                "num_keypoints": int((v[r] > 0).sum()), "bbox": boxes[r].tolist(),
                "area": round(float(boxes[r, 2] * boxes[r, 3]), 2), "iscrowd": 0}
               for r in range(len(v)) if (v[r] > 0).any()]
