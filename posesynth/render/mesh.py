"""The mesh a renderer draws: its topology (faces, vertex normals) and the checked batch of
vertices, cameras and colours every renderer takes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse

from posesynth.render.camera import RenderCamera
from posesynth.render.style import PALETTE


class MeshTopology:
    """A triangle mesh's faces and the sparse vertex-face incidence used for vertex normals."""

    def __init__(self, faces: np.ndarray, num_vertices: int) -> None:
        faces = np.ascontiguousarray(faces, dtype=np.int32)
        if faces.ndim != 2 or faces.shape[1] != 3:
            raise ValueError(f"faces must be (F, 3), got {faces.shape}")
        self.faces = faces
        self.num_vertices = int(num_vertices)
        F = faces.shape[0]
        self._incidence = scipy.sparse.csr_matrix(
            (np.ones(3 * F, dtype=np.float32), (faces.ravel(), np.repeat(np.arange(F), 3))),
            shape=(self.num_vertices, F))

    def vertex_normals(self, vertices: np.ndarray) -> np.ndarray:
        """Unit, area-weighted vertex normals (B, V, 3) float32 of vertices (B, V, 3)."""
        v = np.asarray(vertices, dtype=np.float32)
        B, F = v.shape[0], self.faces.shape[0]
        tri = v[:, self.faces]  # (B, F, 3, 3)
        fn = np.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0])  # (B, F, 3)
        n = self._incidence @ fn.transpose(1, 0, 2).reshape(F, 3 * B)  # (V, 3B)
        n = np.ascontiguousarray(n.reshape(-1, B, 3).transpose(1, 0, 2))
        n /= np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)
        return n


def check_batch(vertices: np.ndarray, cameras: Sequence[RenderCamera], colors: Any,
                num_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (B, V, 3) float32 (a single (V, 3) mesh is a batch of one) and colours (B, 3)
    float32 (default: ``PALETTE`` by position), checked against ``cameras`` (B of them)."""
    v = np.asarray(vertices, dtype=np.float32)
    if v.ndim == 2:
        v = v[None]
    if v.ndim != 3 or v.shape[1:] != (num_vertices, 3):
        raise ValueError(f"vertices must be (B, {num_vertices}, 3), got {v.shape}")
    if len(cameras) != v.shape[0]:
        raise ValueError(f"{v.shape[0]} meshes but {len(cameras)} cameras")
    if colors is None:
        c = np.array([PALETTE[i % len(PALETTE)] for i in range(v.shape[0])], dtype=np.float32)
    else:
        c = np.asarray(colors, dtype=np.float32).reshape(-1, 3)
        if c.shape[0] == 1:
            c = np.repeat(c, v.shape[0], axis=0)
        if c.shape[0] != v.shape[0]:
            raise ValueError(f"{v.shape[0]} meshes but {c.shape[0]} colours")
    return v, c
