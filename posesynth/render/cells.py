"""Grid cells: how each sample is framed (``CellView``) and its rendered, annotated image."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from posesynth.render.backend import get_renderer
from posesynth.render.camera import NEAR, RenderCamera, canonical_camera, frame_window, heading, scale_pixels
from posesynth.render.draw import draw_marker
from posesynth.render.errors import RenderError
from posesynth.render.legend import LegendEntry
from posesynth.render.samples import SampleSet, pose_vertices
from posesynth.render.style import BACKGROUND, CLEAN, NOISY, OUTSIDE_COLOR, PALETTE

RENDER_BATCH = 16  # cells rendered (and counted by the progress bar) at a time
VIEWS = ("camera", "front", "side", "top")


@dataclass(frozen=True)
class CellView:
    """How one grid cell shows its sample: ``camera`` renders the whole cell.  In camera view
    the cell is a window of the sample camera's image, from ``corner`` (2,) (pixels of that
    image) magnified ``scale`` times, and ``image_size`` is that image's (W, H); in canonical
    views ``corner`` is None."""

    camera: RenderCamera
    corner: np.ndarray | None = None
    scale: float = 1.0
    image_size: tuple[int, int] = (0, 0)

    def to_cell(self, pixels: np.ndarray) -> np.ndarray:
        """Pixels (..., 2) of the sample camera's image -> pixels of the cell."""
        return scale_pixels(pixels, self.scale, self.scale, self.corner)

    def outside(self) -> np.ndarray:
        """(h, w) bool: the cell's pixels whose centres lie outside the sample camera's image."""
        def out(n: int, start: float, size: int) -> np.ndarray:
            centre = start + (np.arange(n) + 0.5) / self.scale
            return (centre < -0.5) | (centre > size - 0.5)

        assert self.corner is not None
        cam, (W, H) = self.camera, self.image_size
        return out(cam.height, self.corner[1], H)[:, None] | out(cam.width, self.corner[0], W)[None, :]


def cell_views(samples: SampleSet, vertices: np.ndarray, view: str, cell: int) -> list[CellView]:
    """One ``CellView`` of ``cell`` x ``cell`` pixels per sample.  Camera view: the window of
    the sample's image (``frame_window``) that frames its mesh (vertices (B, V, 3) in front of
    the camera) and its clean and noisy 2D keypoints; canonical views: ``canonical_camera``."""
    if view != "camera":
        yaw = heading(samples.global_orient)
        return [CellView(canonical_camera(vertices[b], view, cell, float(yaw[b]))) for b in range(len(samples))]
    assert samples.cameras is not None
    out = []
    for b, cam in enumerate(samples.cameras):
        pix, z = cam.project(vertices[b])
        points = [pix[z > NEAR]] + [p[b] for p in (samples.pixels, samples.pixels_noisy) if p is not None]
        corner, side = frame_window(np.concatenate(points), cam.width, cam.height)
        scale = cell / side
        out.append(CellView(cam.window(corner, scale, cell, cell), corner, scale, (cam.width, cam.height)))
    return out


def render_cells(samples: SampleSet, body: Any, view: str = "camera", cell: int = 512, backend: str = "auto",
                 msaa: int = 4, keypoints: bool = True, background: Sequence[float] = BACKGROUND,
                 vertices: np.ndarray | None = None, progress: bool = False) -> list[np.ndarray]:
    """One RGB image (cell, cell, 3) uint8 per sample, the body filling most of it.

    ``view="camera"`` renders each sample through its own camera, magnified to the window of
    its image that frames the body and its keypoints (``cell_views``; what lies outside the
    image is ``OUTSIDE_COLOR``); ``front``, ``side``, ``top`` use ``canonical_camera``.
    Keypoints of ``samples.keypoint_set`` are drawn on top: in camera view the store's clean
    2D (and noisy 2D when there is some; invisible keypoints hollow), in canonical views the
    3D keypoints projected through the canonical camera.  ``progress``: a progress bar over
    the samples drawn.
    """
    from tqdm import tqdm

    if view not in VIEWS:
        raise RenderError(f"unknown view {view!r} (one of {', '.join(VIEWS)})")
    if view == "camera" and samples.cameras is None:
        raise RenderError("these samples have no cameras (a training store?): use a canonical view, "
                          "--view front, side or top")
    verts = pose_vertices(body, samples) if vertices is None else vertices
    views = cell_views(samples, verts, view, cell)
    colors = np.array([PALETTE[int(k) % len(PALETTE)] for k in samples.color_keys], dtype=np.float32)
    renderer = get_renderer(body.faces, body.num_vertices, backend, samples=msaa)
    images: list[np.ndarray] = []
    with tqdm(total=len(samples), desc="rendering", unit="sample", disable=not progress) as bar:
        for lo in range(0, len(samples), RENDER_BATCH):
            part = range(lo, min(lo + RENDER_BATCH, len(samples)))
            drawn = renderer.render(verts[lo:part.stop], [views[b].camera for b in part], colors[lo:part.stop],
                                    background)
            images += [_finish_cell(im[..., :3], samples, b, views[b], keypoints) for b, im in zip(part, drawn)]
            bar.update(len(part))
    return images


def _finish_cell(image: np.ndarray, samples: SampleSet, b: int, cv: CellView, keypoints: bool) -> np.ndarray:
    """Sample ``b``'s rendered cell (h, w, 3): what lies outside its camera's image greyed, then
    its keypoints drawn (unless not ``keypoints``)."""
    cell = max(cv.camera.width, cv.camera.height)
    if cv.corner is not None:
        image = np.where(cv.outside()[..., None], np.array(OUTSIDE_COLOR, np.uint8), image)
    if not keypoints or samples.keypoint_set is None:
        return image
    if cv.corner is None:
        if samples.keypoints_world is not None:
            image = draw_marker(image, cv.camera.project(samples.keypoints_world[b])[0], samples.edges, None, CLEAN, cell)
        return image
    if samples.pixels_noisy is not None:
        image = draw_marker(image, cv.to_cell(samples.pixels_noisy[b]), samples.edges, None, NOISY, cell)
    if samples.pixels is not None:
        visible = samples.visible[b] if samples.visible is not None else None
        image = draw_marker(image, cv.to_cell(samples.pixels[b]), samples.edges, visible, CLEAN, cell)
    return image


def legend_entries(samples: SampleSet, view: str) -> list[LegendEntry]:
    """The legend of a grid of ``samples`` drawn in ``view`` by ``render_cells``."""
    kp = samples.keypoint_set
    if view != "camera":
        return [LegendEntry(f"{kp} 3D keypoints, projected", "bone")] if kp and samples.keypoints_world is not None else []
    entries = []
    if kp and samples.pixels is not None:
        entries.append(LegendEntry(f"{kp} 2D keypoints", "bone"))
        if samples.pixels_noisy is not None:
            entries.append(LegendEntry("noisy 2D (detector-like)", "bone", NOISY))
        if samples.visible is not None:
            entries.append(LegendEntry("hidden: out of frame or self-occluded", "ring"))
    return entries + [LegendEntry("outside the camera's image", "outside")]
