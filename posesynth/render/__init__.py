"""Rendering posed bodies for inspection: shaded meshes through a sample's own camera,
keypoint overlays, and grids of samples.

Two rasterisers, one image convention:

- **GL** (``GLRenderer``): moderngl on a headless EGL context (Mesa's llvmpipe software
  rasteriser on a CPU machine, the GPU when there is one), a depth buffer, smooth Lambert
  shading with a headlight (the light sits at the camera), 4x MSAA by default.  The context,
  shader program, index buffer and framebuffers are made once and reused; per image only the
  vertices (positions and normals) are uploaded, and images of one size are drawn as tiles of
  one framebuffer and read back together.
- **matplotlib** (``MatplotlibRenderer``), used when no GL context can be created (a notice
  says so once, with the reason): the painter's algorithm over back-face-culled triangles
  sorted far to near, flat Lambert shading with the same headlight; 10-30 times slower.

Image convention (both): an image is ``(H, W, 4)`` uint8 RGBA, row 0 at the top; RGB is the
body composited over the background colour and A is the body's coverage (the silhouette).
Cameras are OpenCV's (``x_cam = R @ x_world + t``, x right, y down, z forward) and pixel
(0, 0) is the *centre* of the top-left pixel, so a camera-frame point lands at
``u = fx * x/z + s * y/z + cx``, ``v = fy * y/z + cy``, exactly as the store's 2D keypoints.
The GL projection matrix is built from K under that convention (``gl_projection``).

Lens distortion (Brown-Conrady ``k1, k2, p1, p2``, OpenCV's model, as the store keeps it) is
the camera model's own (``posesynth.cameras.distort_within_limit``: applied only inside
``distortion_limit``, so far points are not folded back into the image), applied **per vertex**
before rasterising (the GL vertex shader has the same rule, with the limit as a uniform): every
vertex lands exactly where the camera model puts it, and only the straight triangle edges
between vertices ignore the curvature (well under a pixel at this mesh's density).

Modules: ``camera`` (RenderCamera, GL projection, canonical views, framing), ``mesh`` (topology,
normals), ``gl`` and ``mpl`` (the two rasterisers), ``backend`` (choosing one), ``style`` and
``draw`` (colours, keypoint markers), ``samples`` (reading stores), ``checkpoint`` (sampling a
checkpoint in memory), ``cells``, ``legend`` and ``grid`` (the picture), ``commands`` (the CLI's
two entry points).

Shapes: ``B`` images, ``V`` mesh vertices, ``F`` faces, ``J`` keypoints.
"""

from __future__ import annotations
from posesynth.render.backend import get_renderer
from posesynth.render.camera import RenderCamera, canonical_camera, frame_window, gl_projection, scale_pixels
from posesynth.render.cells import CellView, cell_views, legend_entries, render_cells
from posesynth.render.checkpoint import sample_checkpoint
from posesynth.render.commands import render_checkpoint, render_store
from posesynth.render.draw import draw_keypoints
from posesynth.render.errors import RenderError
from posesynth.render.gl import gl_available
from posesynth.render.grid import check_grid, grid_shape, make_grid
from posesynth.render.legend import LegendEntry, legend_strip
from posesynth.render.mesh import MeshTopology
from posesynth.render.samples import SampleSet, parse_indices, pose_vertices, read_store_samples
from posesynth.render.style import BACKGROUND, CLEAN, CLEAN_COLOR, NOISY, OUTSIDE_COLOR, PALETTE

__all__ = [
    "BACKGROUND", "CLEAN", "CLEAN_COLOR", "NOISY", "OUTSIDE_COLOR", "PALETTE", "CellView", "LegendEntry",
    "MeshTopology", "RenderCamera", "RenderError", "SampleSet", "canonical_camera", "cell_views", "check_grid",
    "draw_keypoints", "frame_window", "get_renderer", "gl_available", "gl_projection", "grid_shape",
    "legend_entries", "legend_strip", "make_grid", "parse_indices", "pose_vertices", "read_store_samples",
    "render_cells", "render_checkpoint", "render_store", "sample_checkpoint", "scale_pixels",
]
