"""The matplotlib fallback renderer, used when no GL context can be made: the painter's algorithm
over back-face-culled triangles sorted far to near, flat Lambert shading with the same headlight."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from posesynth.errors import require_extra
from posesynth.render.camera import NEAR, RenderCamera
from posesynth.render.errors import RenderError
from posesynth.render.mesh import MeshTopology, check_batch
from posesynth.render.style import BACKGROUND


class MatplotlibRenderer:
    """The fallback: painter's algorithm with matplotlib's Agg, same interface and conventions
    as ``GLRenderer``.  Back faces are culled and the rest drawn far to near, flat-shaded."""

    name = "matplotlib"
    _DPI = 64  # a power of two, so width / dpi * dpi is exactly width

    def __init__(self, faces: np.ndarray, num_vertices: int, samples: int = 0) -> None:
        require_extra("render", "the matplotlib renderer", "matplotlib")
        self.topology = MeshTopology(faces, num_vertices)

    def render(self, vertices: np.ndarray, cameras: Sequence[RenderCamera], colors: Any = None,
               background: Sequence[float] = BACKGROUND, depth: bool = False) -> list[np.ndarray]:
        """See ``GLRenderer.render``; depth maps need the GL renderer."""
        if depth:
            raise RenderError("depth maps need the GL renderer; the matplotlib fallback has no depth buffer")
        v, c = check_batch(vertices, cameras, colors, self.topology.num_vertices)
        return [self._one(v[i], cameras[i], c[i], np.asarray(background, dtype=np.float64)) for i in range(len(v))]

    def _one(self, vertices: np.ndarray, cam: RenderCamera, color: np.ndarray, background: np.ndarray) -> np.ndarray:
        """One mesh (V, 3) through ``cam`` in ``color`` (3,) over ``background`` (3,) -> (H, W, 4) uint8 RGBA."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.collections import PolyCollection
        from matplotlib.figure import Figure

        faces = self.topology.faces
        cam_pts = vertices.astype(np.float64) @ cam.R.T + cam.t
        pix, z = cam.project(vertices)
        tri = cam_pts[faces]  # (F, 3, 3)
        normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        centroid = tri.mean(1)
        keep = (z[faces] > NEAR).all(1) & ((normal * centroid).sum(1) < 0)  # in front, facing the camera
        n = normal[keep] / np.maximum(np.linalg.norm(normal[keep], axis=1, keepdims=True), 1e-12)
        light = -centroid[keep] / np.linalg.norm(centroid[keep], axis=1, keepdims=True)
        d = np.abs((n * light).sum(1))[:, None]
        rgb = np.minimum(color[None] * (0.22 + 0.78 * d) + 0.10 * d**24, 1.0)
        order = np.argsort(-centroid[keep, 2], kind="stable")  # far first
        polys = pix[faces[keep]][order]
        rgba = np.concatenate([rgb[order], np.ones((len(order), 1))], axis=1)

        W, H = cam.width, cam.height
        fig = Figure(figsize=(W / self._DPI, H / self._DPI), dpi=self._DPI)
        fig.patch.set_alpha(0.0)
        canvas = FigureCanvasAgg(fig)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        ax.set_xlim(-0.5, W - 0.5)
        ax.set_ylim(H - 0.5, -0.5)
        ax.add_collection(PolyCollection(polys, facecolors=rgba, edgecolors=rgba, linewidths=0.3,
                                         antialiaseds=True))
        canvas.draw()
        buf = np.asarray(canvas.buffer_rgba(), dtype=np.float64)
        if buf.shape[:2] != (H, W):
            raise RenderError(f"matplotlib drew {buf.shape[1]}x{buf.shape[0]} instead of {W}x{H}")
        alpha = buf[..., 3:] / 255.0
        out = buf[..., :3] * alpha + 255.0 * background[None, None] * (1.0 - alpha)
        return np.concatenate([out, buf[..., 3:]], axis=-1).round().clip(0, 255).astype(np.uint8)
