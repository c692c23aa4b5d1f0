"""Posed body meshes of stored samples as OBJ, PLY or GLB files (trimesh).

Coordinates (``frame``):

- ``world``: the store's world frame, metres, right-handed, +y up, the floor at y = 0 (training
  stores: the mocap's own floor).  A body with zero global orientation faces +z.
- ``camera``: the sample's camera frame (sample stores only; ``view`` picks one of its V
  cameras), OpenCV's convention: ``x_cam = R @ x_world + t``, metres, x right, **y down**, z
  forward along the optical axis.  Most 3D viewers put +y up, so such a mesh looks upside down
  there; that is the convention, not a bug.

Files: one per sample (``sample_<index>.<format>``) or, with ``scene``, one file holding all
of them.  In a scene the samples are laid out in a row, ``spacing`` metres apart along the
frame's x axis, so they do not overlap (``spacing=0`` keeps them where they are); GLB keeps each
sample's vertices exact and puts that offset in its node's transform, while OBJ and PLY, which
have no transforms, get the offset added to the vertices.  Vertex order and faces are the body
model's, so ``trimesh.load(path, process=False)`` gives back the same vertices (pass
``process=False``: trimesh otherwise merges and reorders vertices).  Each mesh carries its
sample's palette colour as vertex colours.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from posesynth.errors import PosesynthError
from posesynth.outputs import atomic_output, check_output

FORMATS = ("obj", "ply", "glb")
FRAMES = ("world", "camera")


class MeshExportError(PosesynthError, ValueError):
    """A mesh export that cannot be done as asked; the message says why."""


def posed_meshes(store: str | Path, indices: str | Sequence[int], frame: str = "world", view: int = 0,
                 body_model: str | Path | None = None, body: Any = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Posed meshes of stored samples.

    Returns the sample indices (B,), the vertices (B, V, 3) float32 in ``frame`` (see the module
    docstring), the faces (F, 3) int64 and each sample's palette colour (B, 3) in [0, 1].
    """
    from posesynth.body_model import load_body_model
    from posesynth.render import PALETTE, RenderError, pose_vertices, read_store_samples

    if frame not in FRAMES:
        raise MeshExportError(f"unknown frame {frame!r} (world or camera)")
    body = body if body is not None else load_body_model(body_model)
    try:
        samples = read_store_samples(store, indices, None, view)
    except RenderError as exc:
        raise MeshExportError(str(exc)) from None
    verts = pose_vertices(body, samples)
    if frame == "camera":
        if samples.cameras is None:
            raise MeshExportError(f"{store}: this store has no cameras (a training store?): use --frame world")
        R = np.stack([c.R for c in samples.cameras])
        t = np.stack([c.t for c in samples.cameras])
        verts = (np.einsum("bij,bvj->bvi", R, verts.astype(np.float64)) + t[:, None]).astype(np.float32)
    colors = np.array([PALETTE[int(k) % len(PALETTE)] for k in samples.color_keys])
    assert samples.indices is not None
    return samples.indices, verts, body.faces, colors


def _mesh(vertices: np.ndarray, faces: np.ndarray, color: Sequence[float]) -> Any:
    import trimesh

    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False, validate=False)
    rgba = np.array([*(int(round(255 * c)) for c in color), 255], dtype=np.uint8)
    mesh.visual.vertex_colors = np.repeat(rgba[None], len(vertices), axis=0)
    return mesh


def export_meshes(store: str | Path, indices: str | Sequence[int], out: str | Path, fmt: str | None = None,
                  frame: str = "world", scene: bool = False, view: int = 0, body_model: str | Path | None = None,
                  spacing: float = 1.0, overwrite: bool = False) -> list[Path]:
    """Write posed meshes of stored samples; returns the files written.

    ``out``: with ``scene`` or a single sample, the file to write (its suffix gives the format
    when ``fmt`` is None); otherwise a folder that receives ``sample_<index>.<fmt>`` files.
    Existing files are replaced only with ``overwrite``; each file is written atomically.
    """
    import trimesh

    out = Path(out)
    if fmt is None:
        fmt = out.suffix.lstrip(".").lower()
        if fmt not in FORMATS:
            raise MeshExportError(f"cannot tell the format from {out.name!r}: pass --format obj, ply or glb")
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise MeshExportError(f"unknown format {fmt!r} (obj, ply or glb)")
    idx, verts, faces, colors = posed_meshes(store, indices, frame, view, body_model)
    one_file = scene or len(idx) == 1
    if one_file and out.suffix.lower() != f".{fmt}":
        out = out.with_suffix(out.suffix + f".{fmt}") if out.suffix else out.with_suffix(f".{fmt}")
    if not one_file and out.exists() and not out.is_dir():
        raise MeshExportError(f"{out} is a file; several samples without --scene need a folder")
    paths = [out] if one_file else [out / f"sample_{i:06d}.{fmt}" for i in idx]
    for path in paths:
        check_output(path, overwrite)
    if not scene:
        for path, v, c in zip(paths, verts, colors):
            with atomic_output(path, overwrite) as tmp:
                _mesh(v, faces, c).export(tmp, file_type=fmt)
        return paths
    offsets = np.zeros((len(idx), 3))
    offsets[:, 0] = (np.arange(len(idx)) - (len(idx) - 1) / 2) * spacing
    if fmt == "glb":
        sc = trimesh.Scene()
        for i, v, c, off in zip(idx, verts, colors, offsets):
            transform = np.eye(4)
            transform[:3, 3] = off
            sc.add_geometry(_mesh(v, faces, c), node_name=f"sample_{i:06d}", geom_name=f"sample_{i:06d}",
                            transform=transform)
        with atomic_output(out, overwrite) as tmp:
            sc.export(tmp, file_type="glb")
    else:
        meshes = [_mesh(v + off.astype(np.float32), faces, c) for v, c, off in zip(verts, colors, offsets)]
        with atomic_output(out, overwrite) as tmp:
            trimesh.util.concatenate(meshes).export(tmp, file_type=fmt)
    return [out]
