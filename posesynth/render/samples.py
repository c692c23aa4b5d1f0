"""Samples to draw (``SampleSet``), read from a sample or training store, and posed on a body model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from posesynth.render.camera import RenderCamera
from posesynth.render.draw import keypoint_edges
from posesynth.render.errors import RenderError
from posesynth.render.grid import MAX_GRID_CELLS, MAX_GRID_PIXELS
from posesynth.stores import samples as sample_store, training as training_store
from posesynth.stores.arrays import read_rows


@dataclass
class SampleSet:
    """B samples to draw: SMPL parameters, and (sample stores) cameras and 2D keypoints of one view.

    Arrays: ``global_orient`` (B, 3), ``body_pose`` (B, 69), ``betas`` (B, K), ``transl`` (B, 3);
    ``keypoints_world`` (B, J, 3) metres; ``pixels`` and ``pixels_noisy`` (B, J, 2) and
    ``visible`` (B, J) in the cameras' own images.  ``captions`` label each cell; ``color_keys``
    (B,) pick each mesh's palette colour.
    """

    global_orient: np.ndarray
    body_pose: np.ndarray
    betas: np.ndarray
    transl: np.ndarray
    captions: list[str]
    color_keys: np.ndarray
    indices: np.ndarray | None = None  # (B,) rows of the store they came from
    keypoint_set: str | None = None
    edges: list[tuple[int, int]] = field(default_factory=list)
    keypoints_world: np.ndarray | None = None
    cameras: list[RenderCamera] | None = None
    pixels: np.ndarray | None = None
    pixels_noisy: np.ndarray | None = None
    visible: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.global_orient.shape[0])


def parse_indices(text: str, n: int, limit: int | None = None) -> np.ndarray:
    """``"0:16"``, ``"3"``, ``"1,5,9"``, ``"0:100:10"`` or a mix (``"1,4:6"``) -> indices (B,) into N = ``n`` rows.

    Slices are Python's (end excluded, negative counts from the end, clipped to N); single
    indices must exist.  Order is kept, repeats are allowed.  More than ``limit`` indices is a
    RenderError, found before any list of them is made.
    """
    parts: list[range] = []
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        try:
            if ":" in part:
                bits = [int(b) if b else None for b in part.split(":")]
                if len(bits) > 3:
                    raise ValueError
                parts.append(range(n)[slice(*bits)])
            else:
                i = int(part)
                if not -n <= i < n:
                    raise RenderError(f"index {i} is out of range: the store has {n} samples")
                parts.append(range(i % n, i % n + 1))
        except ValueError:
            raise RenderError(f"cannot read index {part!r} (use I, I,J,K or A:B[:STEP])") from None
    count = sum(map(len, parts))
    if not count:
        raise RenderError(f"index {text!r} selects no sample (the store has {n})")
    if limit is not None and count > limit:
        raise RenderError(f"--index {text} selects {count:,} samples; one grid of cells this size holds at most "
                          f"{limit:,} (at most {MAX_GRID_CELLS:,} cells and {MAX_GRID_PIXELS / 1e6:.0f} megapixels): "
                          "select fewer" + (", or a smaller --size" if limit < MAX_GRID_CELLS else ""))
    return np.fromiter((i for r in parts for i in r), dtype=np.int64, count=count)


def labelled(indices: np.ndarray, codes: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """``SampleSet``'s ``indices`` (B,), ``captions`` (``#row label``) and ``color_keys`` (B,) (a
    label's colour, else the row's own) of rows ``indices`` (B,) with label ``codes`` (B,) into
    ``names`` (-1: no label)."""
    captions = [f"#{i}" + (f" {names[c]}" if 0 <= c < len(names) else "") for i, c in zip(indices, codes)]
    return {"indices": indices, "captions": captions, "color_keys": np.where(codes >= 0, codes, indices)}


def _label_names(attrs: dict[str, Any]) -> list[str]:
    labels = attrs.get("labels")
    if isinstance(labels, dict):  # training stores: {field: vocabulary}; sample stores may use {"names": [...]}
        labels = labels.get("names", labels.get("content"))
    return [str(x) for x in labels] if isinstance(labels, (list, tuple)) else []


def read_store_samples(path: str | Path, indices: str | Sequence[int] = "0:16", keypoint_set: str | None = "smpl24",
                       view: int = 0, body: Any = None, limit: int | None = None) -> SampleSet:
    """Read samples from a sample store (``posesynth sample``) or a training store (``prepare``).

    ``keypoint_set``: the set whose 2D keypoints (sample stores) or 3D joints are drawn
    (None: no keypoints); ``view``: which of a sample store's V views gives the camera.
    Training stores hold no cameras and only smpl24 joints; other sets are derived from the
    pose on ``body`` (``posesynth.keypoint_sets.compute_keypoints``).  ``limit``: the most
    samples ``indices`` may select (``parse_indices``).
    """
    from posesynth.store import open_store
    from posesynth.stores import checked_arrays

    group = open_store(path)
    checked_arrays(group)  # a damaged store is named before anything is read
    attrs = dict(group.attrs)
    kind = attrs["posesynth"].get("kind")
    if kind not in (sample_store.KIND, training_store.KIND):
        raise RenderError(f"{path}: cannot render a {kind!r} store (only sample and training stores)")
    layout = sample_store if kind == sample_store.KIND else training_store
    n = int(group[layout.smpl_path("global_orient")].shape[0])
    idx = parse_indices(indices, n, limit) if isinstance(indices, str) else np.asarray(indices, dtype=np.int64)
    if idx.size == 0 or idx.min() < 0 or idx.max() >= n:
        raise RenderError(f"indices must lie in 0..{n - 1}")
    get = {name: read_rows(group[layout.smpl_path(name)], idx).astype(np.float32) for name in layout.SMPL_PARAMS}
    names = _label_names(attrs)
    label_key = sample_store.LABEL_PATH if kind == sample_store.KIND else training_store.label_path("content")
    codes = read_rows(group[label_key], idx).astype(np.int64) if label_key in group else np.full(len(idx), -1)
    out = SampleSet(**get, **labelled(idx, codes, names))
    if kind == training_store.KIND:
        if keypoint_set == "smpl24":
            out.keypoints_world = read_rows(group[training_store.JOINTS_PATH], idx).astype(np.float64)
        elif keypoint_set:
            if body is None:
                raise RenderError(f"{path}: a training store holds smpl24 joints only; {keypoint_set!r} "
                                  "needs the body model to derive it")
            out.keypoints_world = derive_keypoints(body, out, keypoint_set)
        if keypoint_set:
            out.keypoint_set, out.edges = keypoint_set, keypoint_edges(keypoint_set)
        return out
    wanted = [sample_store.camera_path(p) for p in sample_store.CAMERA_PARAMS]
    if keypoint_set:
        if sample_store.keypoints_path(keypoint_set, "world") not in group:
            have = sorted(attrs.get("keypoint_sets", {})) or ["smpl24"]
            raise RenderError(f"{path}: no keypoint set {keypoint_set!r} in this store (it has {', '.join(have)})")
        wanted += [sample_store.keypoints_path(keypoint_set, a)
                   for a in ("world", "pixels", "visible", sample_store.NOISY)]
    arrays = {name: read_rows(group[name], idx) for name in wanted if name in group}
    add_views(out, arrays, keypoint_set, view, attrs.get("keypoint_sets"), str(path))
    return out


def add_views(out: SampleSet, arrays: dict[str, np.ndarray], keypoint_set: str | None, view: int,
               store_sets: dict[str, Any] | None, where: str) -> None:
    """Fill ``out``'s cameras and keypoints of camera ``view`` from sample-store arrays, their rows
    already selected: ``camera/*`` (B, V, ...), ``keypoints/<set>/world`` (B, J, 3), ``pixels``
    and ``pixels_noisy`` (B, V, J, 2), ``visible`` (B, V, J)."""
    ncams = int(arrays[sample_store.camera_path("K")].shape[1]) if sample_store.camera_path("K") in arrays else 0
    if ncams:
        if not 0 <= view < ncams:
            raise RenderError(f"{where}: camera view {view} does not exist (there are {ncams} per sample)")
        cam = {name: arrays[sample_store.camera_path(name)][:, view] for name in sample_store.CAMERA_PARAMS}
        out.cameras = [RenderCamera(K=cam["K"][b], R=cam["R"][b], t=cam["t"][b], distortion=cam["distortion"][b],
                                    width=int(cam["image_size"][b, 0]), height=int(cam["image_size"][b, 1]))
                       for b in range(len(out))]
    if keypoint_set:
        path = {a: sample_store.keypoints_path(keypoint_set, a) for a in sample_store.KEYPOINT_ARRAYS}
        out.keypoint_set = keypoint_set
        out.edges = keypoint_edges(keypoint_set, store_sets)
        out.keypoints_world = np.asarray(arrays[path["world"]], dtype=np.float64)
        if ncams:
            out.pixels = np.asarray(arrays[path["pixels"]][:, view], dtype=np.float64)
            if path["visible"] in arrays:
                out.visible = np.asarray(arrays[path["visible"]][:, view])
            if path[sample_store.NOISY] in arrays:
                out.pixels_noisy = np.asarray(arrays[path[sample_store.NOISY]][:, view], dtype=np.float64)


def derive_keypoints(body: Any, samples: SampleSet, keypoint_set: str) -> np.ndarray:
    """World keypoints (B, J, 3) of a set, derived from the samples' SMPL parameters on ``body``."""
    import torch

    from posesynth.keypoint_sets import compute_keypoints
    from posesynth.kinematics import forward_kinematics
    from posesynth.rotations import axis_angle_to_matrix

    pose = np.concatenate([samples.global_orient, samples.body_pose], axis=1).reshape(len(samples), -1, 3)
    local = axis_angle_to_matrix(torch.as_tensor(pose, dtype=body.dtype))
    betas = torch.as_tensor(samples.betas[:, :body.num_betas], dtype=body.dtype)
    with torch.no_grad():
        G, joints = forward_kinematics(local, body.rest_joints(betas))
        joints = joints + torch.as_tensor(samples.transl, dtype=body.dtype)[:, None]
        try:
            out = compute_keypoints([keypoint_set], body, G, joints, betas)[keypoint_set]
        except ValueError as exc:
            raise RenderError(str(exc)) from None
    return out.double().numpy()


def pose_vertices(body: Any, samples: SampleSet, batch: int = 64) -> np.ndarray:
    """World vertices (B, V, 3) float32 of the samples posed on ``body`` (a ``BodyModel``)."""
    import torch

    out = []
    with torch.no_grad():
        for s in range(0, len(samples), batch):
            sl = slice(s, s + batch)
            betas = samples.betas[sl][:, :body.num_betas]
            res = body(torch.from_numpy(samples.global_orient[sl]), torch.from_numpy(samples.body_pose[sl]),
                       torch.from_numpy(np.ascontiguousarray(betas)), torch.from_numpy(samples.transl[sl]))
            out.append(res.vertices.cpu().numpy().astype(np.float32))
    return np.concatenate(out, axis=0)
