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
applied **per vertex** before rasterising: every vertex lands exactly where the camera model
puts it, and only the straight triangle edges between vertices ignore the curvature (well
under a pixel at this mesh's density).

Shapes: ``B`` images, ``V`` mesh vertices, ``F`` faces, ``J`` keypoints.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

from posesynth.errors import PosesynthError
from posesynth.outputs import atomic_output, check_output

BACKGROUND = (0.93, 0.93, 0.92)
#: Mesh colours, one per sample (by label when the sample has one, else by position).
PALETTE = (
    (0.86, 0.76, 0.66),  # sand
    (0.70, 0.80, 0.68),  # sage
    (0.84, 0.72, 0.84),  # mauve
    (0.78, 0.78, 0.80),  # grey
    (0.90, 0.84, 0.60),  # straw
    (0.66, 0.80, 0.80),  # teal grey
    (0.88, 0.70, 0.70),  # rose
    (0.76, 0.72, 0.62),  # khaki
)
CLEAN_COLOR = (0, 110, 255)  # clean 2D keypoints and skeleton
NOISY_COLOR = (235, 40, 40)  # detector-like noisy 2D
VIEWS = ("camera", "front", "side", "top")
NEAR, FAR = 0.05, 1000.0  # clipping planes, metres


class RenderError(PosesynthError, RuntimeError):
    """Rendering cannot be done as asked; the message says why."""


# ---------------------------------------------------------------------------- cameras
@dataclass(frozen=True)
class RenderCamera:
    """One OpenCV camera to render through.

    ``K`` (3, 3) intrinsics, ``R`` (3, 3) and ``t`` (3,) world -> camera
    (``x_cam = R @ x_world + t``), the image ``width`` and ``height`` in pixels, and
    ``distortion`` (4,) Brown-Conrady ``k1, k2, p1, p2`` (zeros: none).
    """

    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    width: int
    height: int
    distortion: np.ndarray = field(default_factory=lambda: np.zeros(4))

    def __post_init__(self) -> None:
        for name, shape in (("K", (3, 3)), ("R", (3, 3)), ("t", (3,)), ("distortion", (4,))):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape != shape:
                raise ValueError(f"camera {name} must be {shape}, got {value.shape}")
            object.__setattr__(self, name, value)
        if int(self.width) < 1 or int(self.height) < 1:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    def scaled(self, width: int, height: int) -> RenderCamera:
        """The same camera with its image resampled to ``width`` x ``height`` pixels
        (pixel-centre convention: ``u' = sx * (u + 0.5) - 0.5``)."""
        return replace(self, K=scale_intrinsics(self.K, width / self.width, height / self.height),
                       width=width, height=height)

    def window(self, corner: np.ndarray, scale: float, width: int, height: int) -> RenderCamera:
        """The camera whose ``width`` x ``height`` image is the part of this one's that starts at
        ``corner`` (2,) (pixel coordinates of its top-left corner; this image's own is (-0.5, -0.5)),
        magnified ``scale`` times: ``u' = scale * (u - corner_u) - 0.5``."""
        return replace(self, K=scale_intrinsics(self.K, scale, scale, corner), width=width, height=height)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (N, 3) -> pixels (N, 2) with distortion, and depth z (N,) in metres."""
        cam = np.asarray(points, dtype=np.float64) @ self.R.T + self.t
        z = cam[:, 2]
        safe = np.where(np.abs(z) < 1e-9, 1e-9, z)
        xy = distort(cam[:, :2] / safe[:, None], self.distortion)
        u = self.K[0, 0] * xy[:, 0] + self.K[0, 1] * xy[:, 1] + self.K[0, 2]
        v = self.K[1, 1] * xy[:, 1] + self.K[1, 2]
        return np.stack([u, v], axis=-1), z


def scale_intrinsics(K: np.ndarray, sx: float, sy: float, corner: Sequence[float] = (-0.5, -0.5)) -> np.ndarray:
    """K (3, 3) for an image resampled by ``sx``, ``sy`` under the pixel-centre convention, from
    its ``corner`` (u, v) on (default: the image's own top-left corner; else a crop)."""
    K = np.array(K, dtype=np.float64)
    K[0, 0] *= sx
    K[0, 1] *= sx
    K[0, 2] = sx * (K[0, 2] - corner[0]) - 0.5
    K[1, 1] *= sy
    K[1, 2] = sy * (K[1, 2] - corner[1]) - 0.5
    return K


def scale_pixels(pixels: np.ndarray, sx: float, sy: float, corner: Sequence[float] = (-0.5, -0.5)) -> np.ndarray:
    """Pixels (..., 2) in an image resampled by ``sx``, ``sy`` from its ``corner`` (as ``scale_intrinsics``)."""
    p = np.asarray(pixels, dtype=np.float64)
    return np.stack([sx * (p[..., 0] - corner[0]) - 0.5, sy * (p[..., 1] - corner[1]) - 0.5], axis=-1)


def distort(xy: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """OpenCV's Brown-Conrady distortion of normalised image points (N, 2); ``coeffs`` k1, k2, p1, p2."""
    k1, k2, p1, p2 = (float(c) for c in coeffs)
    if k1 == k2 == p1 == p2 == 0.0:
        return xy
    x, y = xy[:, 0], xy[:, 1]
    r2 = x * x + y * y
    radial = 1.0 + k1 * r2 + k2 * r2 * r2
    xd = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
    yd = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
    return np.stack([xd, yd], axis=-1)


def gl_projection(K: np.ndarray, width: int, height: int, near: float = NEAR, far: float = FAR) -> np.ndarray:
    """The 4x4 GL projection (acting on OpenCV camera coordinates) that reproduces K exactly.

    NDC x = -1 is the left edge of pixel column 0 (``u = -0.5``) and NDC y = -1 the top edge
    of row 0 (``v = -0.5``): y is *not* flipped, so GL's first framebuffer row, which
    ``glReadPixels`` returns first, is the image's top row.  Depth: z = near -> -1, far -> +1;
    ``w_clip = z``.  (The shader applies this matrix after per-vertex lens distortion.)
    """
    fx, s, cx, fy, cy = K[0, 0], K[0, 1], K[0, 2], K[1, 1], K[1, 2]
    P = np.zeros((4, 4))
    P[0] = [2 * fx / width, 2 * s / width, 2 * (cx + 0.5) / width - 1, 0]
    P[1] = [0, 2 * fy / height, 2 * (cy + 0.5) / height - 1, 0]
    P[2] = [0, 0, (far + near) / (far - near), -2 * far * near / (far - near)]
    P[3] = [0, 0, 1, 0]
    return P


def heading(global_orient: np.ndarray) -> np.ndarray:
    """Yaw about +y (radians, 0 = facing +z, +pi/2 = facing +x) of axis-angle pelvis rotations (B, 3) -> (B,)."""
    from scipy.spatial.transform import Rotation

    forward = Rotation.from_rotvec(np.asarray(global_orient, dtype=np.float64).reshape(-1, 3)).apply([0.0, 0.0, 1.0])
    return np.arctan2(forward[:, 0], forward[:, 2])


def canonical_camera(vertices: np.ndarray, view: str, size: int = 512, yaw: float = 0.0,
                     fov_deg: float = 25.0, margin: float = 1.08) -> RenderCamera:
    """A square ``size`` x ``size`` perspective camera framing ``vertices`` (V, 3) from a canonical view.

    The views are relative to the body's heading ``yaw`` (``heading``): ``front`` looks at the
    body's front (its left side on the image's right), ``side`` looks at its left side, ``top``
    looks straight down with the body's front towards the image's bottom.  World +y is
    image-up in ``front`` and ``side``.
    """
    if view not in ("front", "side", "top"):
        raise ValueError(f"unknown canonical view {view!r} (front, side or top)")
    forward = np.array([np.sin(yaw), 0.0, np.cos(yaw)])
    left = np.array([np.cos(yaw), 0.0, -np.sin(yaw)])
    down = np.array([0.0, -1.0, 0.0])
    if view == "front":
        z_axis, y_axis = -forward, down
    elif view == "side":
        z_axis, y_axis = -left, down
    else:
        z_axis, y_axis = down, forward
    R = np.stack([np.cross(y_axis, z_axis), y_axis, z_axis])
    v = np.asarray(vertices, dtype=np.float64)
    centre = 0.5 * (v.min(0) + v.max(0))
    local = (v - centre) @ R.T
    half = np.abs(local[:, :2]).max()
    depth = np.abs(local[:, 2]).max()
    tan = np.tan(np.radians(fov_deg) / 2)
    distance = depth + margin * max(half, 0.05) / tan
    f = (size / 2) / tan
    K = np.array([[f, 0, (size - 1) / 2], [0, f, (size - 1) / 2], [0, 0, 1]])
    position = centre - distance * z_axis
    return RenderCamera(K=K, R=R, t=-R @ position, width=size, height=size)


FRAME_MARGIN = 0.06  # a framed body's margin on each side, as a fraction of its longer extent
MIN_WINDOW = 8.0  # pixels: the smallest window framed (a body seen as a dot is not magnified further)


def frame_window(points: np.ndarray, width: int, height: int, margin: float = FRAME_MARGIN) -> tuple[np.ndarray, float]:
    """The square window of a ``width`` x ``height`` image that frames ``points`` (N, 2) pixels.

    Returns the window's top-left corner (2,) in pixel coordinates (the image's own corner is
    (-0.5, -0.5)) and its side in pixels.  The window is the bounding box of the points inside
    the image (none: the whole image), grown by ``margin`` of its longer side on each side and
    made square about its centre, then moved inside the image along each axis where it fits
    (else centred on the image along it).
    """
    image_lo, image_hi = np.array([-0.5, -0.5]), np.array([width - 0.5, height - 0.5])
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    p = p[(p >= image_lo).all(1) & (p <= image_hi).all(1)]  # NaN compares False: dropped too
    lo, hi = (p.min(0), p.max(0)) if len(p) else (image_lo, image_hi)
    side = max(float((hi - lo).max()) * (1 + 2 * margin), MIN_WINDOW)
    corner = (lo + hi - side) / 2
    fits = side <= image_hi - image_lo
    corner = np.where(fits, np.clip(corner, image_lo, image_hi - side), (image_lo + image_hi - side) / 2)
    return corner, side


# ---------------------------------------------------------------------------- mesh helpers
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


def _check_batch(vertices: np.ndarray, cameras: Sequence[RenderCamera], colors: Any,
                 num_vertices: int) -> tuple[np.ndarray, np.ndarray]:
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


# ---------------------------------------------------------------------------- GL renderer
_VERTEX_SHADER = """
#version 330
uniform mat3 R;
uniform vec3 t;
uniform vec4 dist;      // k1, k2, p1, p2
uniform mat4 P;         // gl_projection(K), applied to (distorted) camera coordinates
uniform float near;
in vec3 in_pos;
in vec3 in_normal;
out vec3 v_cam;
out vec3 v_normal;
void main() {
    vec3 p = R * in_pos + t;
    v_cam = p;
    v_normal = R * in_normal;
    vec3 q = p;
    if (p.z > near && dist != vec4(0.0)) {
        vec2 xy = p.xy / p.z;
        float r2 = dot(xy, xy);
        float radial = 1.0 + dist.x * r2 + dist.y * r2 * r2;
        vec2 d = xy * radial + vec2(2.0 * dist.z * xy.x * xy.y + dist.w * (r2 + 2.0 * xy.x * xy.x),
                                    dist.z * (r2 + 2.0 * xy.y * xy.y) + 2.0 * dist.w * xy.x * xy.y);
        q = vec3(d * p.z, p.z);
    }
    gl_Position = P * vec4(q, 1.0);
}
"""

_FRAGMENT_SHADER = """
#version 330
uniform vec3 color;
in vec3 v_cam;
in vec3 v_normal;
out vec4 frag;
void main() {
    vec3 n = normalize(v_normal);
    vec3 l = normalize(-v_cam);           // headlight: the light sits at the camera
    float d = abs(dot(n, l));
    vec3 c = color * (0.22 + 0.78 * d) + vec3(0.10 * pow(d, 24.0));
    frag = vec4(min(c, vec3(1.0)), 1.0);
}
"""

_GL_CONTEXT: Any = None
_GL_ERROR: str | None = None


def gl_context() -> Any:
    """The process's headless moderngl context (EGL), made on first use.

    Raises ``RenderError`` with the reason when none can be created (no moderngl, no EGL
    library, no GL 3.3 driver); the reason is remembered, so later calls fail at once.
    """
    global _GL_CONTEXT, _GL_ERROR
    if _GL_CONTEXT is not None:
        return _GL_CONTEXT
    if _GL_ERROR is not None:
        raise RenderError(_GL_ERROR)
    try:
        import moderngl
    except ImportError as exc:
        _GL_ERROR = f"moderngl is not installed ({exc})"
        raise RenderError(_GL_ERROR) from None
    try:
        ctx = moderngl.create_standalone_context(backend="egl", require=330)
    except Exception as exc:  # glcontext raises bare Exceptions for missing libraries and drivers
        _GL_ERROR = (f"no headless EGL context ({type(exc).__name__}: {exc}); on Debian/Ubuntu install "
                     "libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri")
        raise RenderError(_GL_ERROR) from None
    _GL_CONTEXT = ctx  # lives as long as the process; GL objects are released explicitly (``release``)
    return ctx


def gl_available() -> tuple[bool, str]:
    """(True, renderer name) when a GL context can be made, else (False, why not)."""
    try:
        ctx = gl_context()
    except RenderError as exc:
        return False, str(exc)
    return True, f"{ctx.info['GL_RENDERER']} / {ctx.info['GL_VERSION']}"


class GLRenderer:
    """Depth-buffered, shaded rendering with moderngl on a headless EGL context.

    ``samples``: MSAA samples per pixel (0 = none).  Images of one size are drawn as tiles
    of one framebuffer (at most ``max_atlas_pixels / max(samples, 1)`` pixels) and read
    back in one call.
    """

    name = "gl"

    def __init__(self, faces: np.ndarray, num_vertices: int, samples: int = 4,
                 max_atlas_pixels: int = 2048 * 2048) -> None:
        import moderngl

        self._mgl = moderngl
        self.ctx = gl_context()
        self.topology = MeshTopology(faces, num_vertices)
        self.samples = min(int(samples), int(self.ctx.max_samples)) if samples else 0
        self.max_atlas_pixels = max_atlas_pixels
        self.program = self.ctx.program(vertex_shader=_VERTEX_SHADER, fragment_shader=_FRAGMENT_SHADER)
        self.program["near"].value = NEAR
        self.vbo = self.ctx.buffer(reserve=self.topology.num_vertices * 6 * 4)
        self.ibo = self.ctx.buffer(self.topology.faces.tobytes())
        self.vao = self.ctx.vertex_array(self.program, [(self.vbo, "3f 3f", "in_pos", "in_normal")],
                                         index_buffer=self.ibo, index_element_size=4)
        self._fbo_size: tuple[int, int] | None = None
        self._fbo: Any = None
        self._resolve: Any = None

    def release(self) -> None:
        """Free this renderer's GL objects (the shared context stays)."""
        for obj in (self._fbo, self._resolve if self._resolve is not self._fbo else None,
                    self.vao, self.vbo, self.ibo, self.program):
            if obj is not None:
                obj.release()
        self._fbo = self._resolve = None
        self._fbo_size = None

    def _framebuffers(self, width: int, height: int) -> tuple[Any, Any]:
        if self._fbo_size != (width, height):
            for obj in (self._fbo, self._resolve if self._resolve is not self._fbo else None):
                if obj is not None:
                    obj.release()
            ctx = self.ctx
            self._fbo = ctx.framebuffer(color_attachments=[ctx.renderbuffer((width, height), 4, samples=self.samples)],
                                        depth_attachment=ctx.depth_renderbuffer((width, height), samples=self.samples))
            self._resolve = ctx.simple_framebuffer((width, height), components=4) if self.samples else self._fbo
            self._fbo_size = (width, height)
        return self._fbo, self._resolve

    def _tiles(self, width: int, height: int, count: int) -> tuple[int, int]:
        budget = self.max_atlas_pixels // max(self.samples, 1)
        limit = int(self.ctx.info["GL_MAX_RENDERBUFFER_SIZE"])
        cols = max(1, min(count, limit // width, int(np.sqrt(budget / (width * height))) or 1))
        rows = max(1, min(-(-count // cols), limit // height, budget // (cols * width * height) or 1))
        return cols, rows

    def render(self, vertices: np.ndarray, cameras: Sequence[RenderCamera], colors: Any = None,
               background: Sequence[float] = BACKGROUND, depth: bool = False) -> Any:
        """Render meshes (B, V, 3) in world coordinates, each through its camera.

        ``colors`` (B, 3) or (3,) floats in [0, 1] (default: ``PALETTE``).  Returns B RGBA
        images (H_i, W_i, 4) uint8 (see the module's image convention); with ``depth``, also
        B depth maps (H_i, W_i) float32: camera z in metres of the nearest surface (with
        MSAA, of one sample per pixel), ``inf`` on the background.
        """
        v, c = _check_batch(vertices, cameras, colors, self.topology.num_vertices)
        depths: list[np.ndarray | None] = [None] * len(cameras)
        normals = self.topology.vertex_normals(v)
        data = np.ascontiguousarray(np.concatenate([v, normals], axis=-1), dtype=np.float32)  # (B, V, 6)
        out: list[np.ndarray | None] = [None] * len(cameras)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, cam in enumerate(cameras):
            groups.setdefault((cam.width, cam.height), []).append(i)
        ctx, prog = self.ctx, self.program
        ctx.enable(self._mgl.DEPTH_TEST)
        ctx.disable(self._mgl.CULL_FACE)
        for (w, h), items in groups.items():
            cols, rows = self._tiles(w, h, len(items))
            per = cols * rows
            fbo, resolve = self._framebuffers(cols * w, rows * h)
            for start in range(0, len(items), per):
                chunk = items[start:start + per]
                fbo.use()
                fbo.viewport = (0, 0, cols * w, rows * h)
                fbo.clear(*background, 0.0, depth=1.0)
                for k, i in enumerate(chunk):
                    cam = cameras[i]
                    fbo.viewport = ((k % cols) * w, (k // cols) * h, w, h)
                    prog["R"].write(cam.R.T.astype("f4").tobytes())  # GLSL matrices are column-major
                    prog["t"].write(cam.t.astype("f4").tobytes())
                    prog["dist"].write(cam.distortion.astype("f4").tobytes())
                    prog["P"].write(gl_projection(cam.K, w, h).T.astype("f4").tobytes())
                    prog["color"].write(c[i].astype("f4").tobytes())
                    self.vbo.write(data[i].tobytes())
                    self.vao.render(self._mgl.TRIANGLES)
                if resolve is not fbo:
                    ctx.copy_framebuffer(resolve, fbo)
                used_rows = -(-len(chunk) // cols)
                raw = resolve.read(viewport=(0, 0, cols * w, used_rows * h), components=4, alignment=1)
                atlas = np.frombuffer(raw, dtype=np.uint8).reshape(used_rows * h, cols * w, 4)
                if depth:
                    raw = resolve.read(viewport=(0, 0, cols * w, used_rows * h), components=1, attachment=-1,
                                       dtype="f4", alignment=1)
                    d = np.frombuffer(raw, dtype=np.float32).reshape(used_rows * h, cols * w).astype(np.float64)
                    ndc = 2.0 * d - 1.0
                    z = np.where(d < 1.0, 2 * FAR * NEAR / ((FAR + NEAR) - ndc * (FAR - NEAR)), np.inf)
                for k, i in enumerate(chunk):
                    r, q = divmod(k, cols)
                    out[i] = atlas[r * h:(r + 1) * h, q * w:(q + 1) * w].copy()
                    if depth:
                        depths[i] = z[r * h:(r + 1) * h, q * w:(q + 1) * w].astype(np.float32)
        return (out, depths) if depth else out


# ---------------------------------------------------------------------------- matplotlib fallback
class MatplotlibRenderer:
    """The fallback: painter's algorithm with matplotlib's Agg, same interface and conventions
    as ``GLRenderer``.  Back faces are culled and the rest drawn far to near, flat-shaded."""

    name = "matplotlib"
    _DPI = 64  # a power of two, so width / dpi * dpi is exactly width

    def __init__(self, faces: np.ndarray, num_vertices: int, samples: int = 0) -> None:
        self.topology = MeshTopology(faces, num_vertices)

    def render(self, vertices: np.ndarray, cameras: Sequence[RenderCamera], colors: Any = None,
               background: Sequence[float] = BACKGROUND, depth: bool = False) -> list[np.ndarray]:
        """See ``GLRenderer.render``; depth maps need the GL renderer."""
        if depth:
            raise RenderError("depth maps need the GL renderer; the matplotlib fallback has no depth buffer")
        v, c = _check_batch(vertices, cameras, colors, self.topology.num_vertices)
        return [self._one(v[i], cameras[i], c[i], np.asarray(background, dtype=np.float64)) for i in range(len(v))]

    def _one(self, vertices: np.ndarray, cam: RenderCamera, color: np.ndarray, background: np.ndarray) -> np.ndarray:
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


# ---------------------------------------------------------------------------- choosing one
_NOTICE_SHOWN = False
_RENDERERS: dict[tuple[str, int, bytes, int], Any] = {}


def _notice(reason: str) -> None:
    global _NOTICE_SHOWN
    if not _NOTICE_SHOWN:
        print(f"posesynth render: no GL context, using the matplotlib fallback renderer "
              f"(painter's algorithm, much slower): {reason}", file=sys.stderr)
        _NOTICE_SHOWN = True


def get_renderer(faces: np.ndarray, num_vertices: int, backend: str = "auto", samples: int = 4) -> Any:
    """A renderer for one mesh topology: ``"gl"``, ``"matplotlib"`` or ``"auto"``.

    ``auto`` (overridden by the environment variable ``POSESYNTH_RENDERER``) is GL when a
    context can be made and otherwise matplotlib, with a one-time notice on stderr saying why.
    ``gl`` raises ``RenderError`` when there is no context.  Renderers are cached per
    (backend, topology, samples).
    """
    if backend == "auto":
        backend = os.environ.get("POSESYNTH_RENDERER", "auto") or "auto"
    if backend not in ("auto", "gl", "matplotlib"):
        raise ValueError(f"unknown renderer {backend!r} (auto, gl or matplotlib)")
    if backend in ("auto", "gl"):
        ok, why = gl_available()
        if ok:
            backend = "gl"
        elif backend == "gl":
            raise RenderError(why)
        else:
            _notice(why)
            backend = "matplotlib"
    faces = np.ascontiguousarray(faces, dtype=np.int32)
    key = (backend, int(num_vertices), faces.tobytes(), int(samples) if backend == "gl" else 0)
    if key not in _RENDERERS:
        cls = GLRenderer if backend == "gl" else MatplotlibRenderer
        if len(_RENDERERS) >= 4:
            old = _RENDERERS.pop(next(iter(_RENDERERS)))
            if hasattr(old, "release"):
                old.release()
        _RENDERERS[key] = cls(faces, num_vertices, samples=samples)
    return _RENDERERS[key]


# ---------------------------------------------------------------------------- overlays
def keypoint_edges(set_name: str, store_sets: dict[str, Any] | None = None) -> list[tuple[int, int]]:
    """Skeleton edges (pairs of keypoint indices) of a keypoint set, for drawing.

    From ``posesynth.keypoint_sets.KEYPOINT_SETS`` when it knows the set, else from the
    parents written in a store's ``keypoint_sets`` attribute, else (smpl24) SMPL's tree.
    """
    try:
        from posesynth.keypoint_sets import KEYPOINT_SETS  # type: ignore[import-not-found]

        if set_name in KEYPOINT_SETS:
            return [(int(a), int(b)) for a, b in KEYPOINT_SETS[set_name].edges]
    except ImportError:
        pass
    info = (store_sets or {}).get(set_name, {})
    if info.get("edges"):
        return [(int(a), int(b)) for a, b in info["edges"]]
    parents = info.get("parents")
    if parents is None and set_name == "smpl24":
        from posesynth.skeleton import SMPL_PARENTS

        parents = SMPL_PARENTS
    return [(int(p), j) for j, p in enumerate(parents or ()) if p is not None and p >= 0]


def draw_keypoints(image: np.ndarray, pixels: np.ndarray, edges: Sequence[tuple[int, int]] = (),
                   visible: np.ndarray | None = None, color: Sequence[int] = CLEAN_COLOR,
                   radius: float = 3.0, width: float = 2.0, supersample: int = 4) -> np.ndarray:
    """Draw 2D keypoints (J, 2) (pixel-centre convention) and skeleton ``edges`` onto ``image``.

    Points are discs; keypoints with ``visible`` != 3 (not in frame or self-occluded) are
    hollow rings.  An edge is drawn when both its ends are finite.  Drawn antialiased on a
    ``supersample``-times larger layer, box-filtered down and composited; returns a new
    (H, W, 3) uint8 image (RGBA input keeps its alpha).
    """
    from PIL import Image, ImageDraw

    img = np.asarray(image)
    H, W = img.shape[:2]
    ss = int(supersample)
    layer = Image.new("RGBA", (W * ss, H * ss), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    p = scale_pixels(np.asarray(pixels, dtype=np.float64), ss, ss)  # centres in the big layer
    finite = np.isfinite(p).all(-1)
    rgba = tuple(int(x) for x in color) + (255,)
    lw = max(1, round(width * ss))
    for a, b in edges:
        if finite[a] and finite[b]:
            draw.line([tuple(p[a]), tuple(p[b])], fill=rgba, width=lw)
    R = radius * ss
    for j in np.flatnonzero(finite):
        box = [p[j, 0] - R, p[j, 1] - R, p[j, 0] + R, p[j, 1] + R]
        if visible is None or int(visible[j]) == 3:
            draw.ellipse(box, fill=rgba, outline=(255, 255, 255, 255), width=max(1, ss // 2))
        else:
            draw.ellipse(box, fill=None, outline=rgba, width=max(1, round(0.45 * R)))
    small = np.asarray(layer.resize((W, H), Image.Resampling.BOX), dtype=np.float64)
    a = small[..., 3:] / 255.0
    # Pillow resizes RGBA with premultiplied alpha and returns straight alpha: composite "over".
    out = img[..., :3].astype(np.float64) * (1 - a) + small[..., :3] * a
    result = out.round().clip(0, 255).astype(np.uint8)
    if img.shape[-1] == 4:
        result = np.concatenate([result, img[..., 3:]], axis=-1)
    return result


# ---------------------------------------------------------------------------- samples to draw
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
                          f"{limit:,} ({MAX_GRID_PIXELS / 1e6:.0f} megapixels): select fewer, or a smaller --size")
    return np.fromiter((i for r in parts for i in r), dtype=np.int64, count=count)


def _read_rows(arr: Any, idx: np.ndarray) -> np.ndarray:
    """Rows ``idx`` of a Zarr array, reading each needed chunk once."""
    lo, hi = int(idx.min()), int(idx.max()) + 1
    if hi - lo <= 4 * len(idx) + 64:
        return np.asarray(arr[lo:hi])[idx - lo]
    uniq, inverse = np.unique(idx, return_inverse=True)
    return np.asarray(arr.oindex[uniq])[inverse]


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

    group = open_store(path)
    attrs = dict(group.attrs)
    kind = attrs["posesynth"].get("kind")
    if kind not in ("samples", "training"):
        raise RenderError(f"{path}: cannot render a {kind!r} store (only sample and training stores)")
    prefix = "smpl/" if kind == "samples" else ""
    n = int(group[prefix + "global_orient"].shape[0])
    idx = parse_indices(indices, n, limit) if isinstance(indices, str) else np.asarray(indices, dtype=np.int64)
    if idx.size == 0 or idx.min() < 0 or idx.max() >= n:
        raise RenderError(f"indices must lie in 0..{n - 1}")
    get = {name: _read_rows(group[prefix + name], idx).astype(np.float32)
           for name in ("global_orient", "body_pose", "betas", "transl")}
    names = _label_names(attrs)
    label_key = "label" if kind == "samples" else "content"
    codes = _read_rows(group[label_key], idx).astype(np.int64) if label_key in group else np.full(len(idx), -1)
    captions = [f"#{i}" + (f" {names[c]}" if 0 <= c < len(names) else "") for i, c in zip(idx, codes)]
    keys = np.where(codes >= 0, codes, idx)  # a label's colour, else the row's own
    out = SampleSet(captions=captions, color_keys=keys, indices=idx, **get)
    if kind == "training":
        if keypoint_set == "smpl24":
            out.keypoints_world = _read_rows(group["joints"], idx).astype(np.float64)
        elif keypoint_set:
            if body is None:
                raise RenderError(f"{path}: a training store holds smpl24 joints only; {keypoint_set!r} "
                                  "needs the body model to derive it")
            out.keypoints_world = derive_keypoints(body, out, keypoint_set)
        if keypoint_set:
            out.keypoint_set, out.edges = keypoint_set, keypoint_edges(keypoint_set)
        return out
    wanted = ["camera/K", "camera/R", "camera/t", "camera/distortion", "camera/image_size"]
    if keypoint_set:
        base = f"keypoints/{keypoint_set}"
        if f"{base}/world" not in group:
            have = sorted(attrs.get("keypoint_sets", {})) or ["smpl24"]
            raise RenderError(f"{path}: no keypoint set {keypoint_set!r} in this store (it has {', '.join(have)})")
        wanted += [f"{base}/{a}" for a in ("world", "pixels", "visible", "pixels_noisy")]
    arrays = {name: _read_rows(group[name], idx) for name in wanted if name in group}
    _add_views(out, arrays, keypoint_set, view, attrs.get("keypoint_sets"), str(path))
    return out


def _add_views(out: SampleSet, arrays: dict[str, np.ndarray], keypoint_set: str | None, view: int,
               store_sets: dict[str, Any] | None, where: str) -> None:
    """Fill ``out``'s cameras and keypoints from sample-store arrays (rows already selected)."""
    ncams = int(arrays["camera/K"].shape[1]) if "camera/K" in arrays else 0
    if ncams:
        if not 0 <= view < ncams:
            raise RenderError(f"{where}: camera view {view} does not exist (there are {ncams} per sample)")
        cam = {name: arrays[f"camera/{name}"][:, view] for name in ("K", "R", "t", "distortion", "image_size")}
        out.cameras = [RenderCamera(K=cam["K"][b], R=cam["R"][b], t=cam["t"][b], distortion=cam["distortion"][b],
                                    width=int(cam["image_size"][b, 0]), height=int(cam["image_size"][b, 1]))
                       for b in range(len(out))]
    if keypoint_set:
        base = f"keypoints/{keypoint_set}"
        out.keypoint_set = keypoint_set
        out.edges = keypoint_edges(keypoint_set, store_sets)
        out.keypoints_world = np.asarray(arrays[f"{base}/world"], dtype=np.float64)
        if ncams:
            out.pixels = np.asarray(arrays[f"{base}/pixels"][:, view], dtype=np.float64)
            if f"{base}/visible" in arrays:
                out.visible = np.asarray(arrays[f"{base}/visible"][:, view])
            if f"{base}/pixels_noisy" in arrays:
                out.pixels_noisy = np.asarray(arrays[f"{base}/pixels_noisy"][:, view], dtype=np.float64)


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


# ---------------------------------------------------------------------------- grids
@dataclass(frozen=True)
class Marker:
    """How one kind of 2D keypoint is drawn: its colour, and its radius and line width as
    multiples of a cell's (``marker_size``)."""

    color: tuple[int, int, int]
    radius: float = 1.0
    width: float = 1.0


CLEAN = Marker(CLEAN_COLOR)
NOISY = Marker(NOISY_COLOR, radius=0.7, width=0.6)
OUTSIDE_COLOR = (212, 212, 212)  # the part of a cell outside its camera's image
RENDER_BATCH = 16  # cells rendered (and counted by the progress bar) at a time


def marker_size(cell: int) -> tuple[float, float]:
    """Keypoint radius and skeleton line width (pixels) in a cell of ``cell`` pixels."""
    return max(2.0, cell / 160), max(1.0, cell / 320)


def draw_marker(image: np.ndarray, pixels: np.ndarray, edges: Sequence[tuple[int, int]], visible: np.ndarray | None,
                marker: Marker, cell: int) -> np.ndarray:
    """``draw_keypoints`` in ``marker``'s style at the size of a ``cell``-pixel cell."""
    radius, width = marker_size(cell)
    return draw_keypoints(image, pixels, edges, visible, marker.color, radius * marker.radius, width * marker.width)


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


@dataclass(frozen=True)
class LegendEntry:
    """One entry of a grid's legend: a symbol, then ``text``.  ``kind``: ``"bone"`` (two
    keypoints and their edge, in ``marker``'s style), ``"ring"`` (a keypoint not visible) or
    ``"outside"`` (a swatch of ``OUTSIDE_COLOR``)."""

    text: str
    kind: str
    marker: Marker = CLEAN


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


def _font(cell: int) -> Any:
    """The font of a grid's captions and legend."""
    from PIL import ImageFont

    return ImageFont.load_default(size=max(10, cell // 28))


def _wrap(text: str, font: Any, width: float) -> list[str]:
    """``text`` broken at spaces into lines of at most ``width`` pixels (a longer word alone)."""
    lines = [""]
    for word in text.split():
        longer = f"{lines[-1]} {word}".strip()
        if lines[-1] and font.getlength(longer) > width:
            lines.append(word)
        else:
            lines[-1] = longer
    return lines


def legend_strip(entries: Sequence[LegendEntry], width: int, cell: int) -> np.ndarray:
    """A white strip (h, ``width``, 3) uint8 showing ``entries`` left to right, moved onto more
    rows where they do not fit (a text too long for a row wrapped), at the sizes of a grid of
    ``cell``-pixel cells."""
    from PIL import Image, ImageDraw

    font = _font(cell)
    size = int(font.size)
    symbol, gap, row, line_step = 3 * size, size, 2 * size, round(1.3 * size)
    indent = symbol + size // 2  # from an entry's symbol to its text
    x, y, tallest, places = gap, 0, row, []
    for e in entries:
        lines = _wrap(e.text, font, width - 2 * gap - indent)
        w = indent + int(max(font.getlength(line) for line in lines))
        if x > gap and x + w > width - gap:
            x, y, tallest = gap, y + tallest, row
        places.append((x, y + row / 2, lines))
        x, tallest = x + w + 2 * gap, max(tallest, row + (len(lines) - 1) * line_step)
    strip = Image.new("RGB", (width, y + tallest), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    for e, (x, y, lines) in zip(entries, places):
        for k, line in enumerate(lines):
            draw.text((x + indent, y + k * line_step), line, fill=(40, 40, 40), font=font, anchor="lm")
        if e.kind == "outside":
            draw.rectangle([x, y - size / 2, x + symbol, y + size / 2], fill=OUTSIDE_COLOR, outline=(150, 150, 150))
    image = np.asarray(strip)
    for e, (x, y, _) in zip(entries, places):
        r = marker_size(cell)[0] * e.marker.radius
        if e.kind == "bone":
            image = draw_marker(image, np.array([[x + r, y], [x + symbol - r, y]]), [(0, 1)], None, e.marker, cell)
        elif e.kind == "ring":
            image = draw_marker(image, np.array([[x + symbol / 2, y]]), [], np.zeros(1), e.marker, cell)
    return image


GRID_GAP = 4  # pixels between cells
MAX_GRID_PIXELS = 100_000_000  # a 10,000 x 10,000 picture, 300 MB in memory


def grid_shape(n: int, cell: int, cols: int | None = None) -> tuple[int, int, int, int]:
    """Columns, rows, width and height (pixels) of a grid of ``n`` cells of ``cell`` pixels."""
    cols = min(n, int(cols)) if cols else int(np.ceil(np.sqrt(n)))
    rows = -(-n // cols)
    step = cell + GRID_GAP
    return cols, rows, cols * step - GRID_GAP, rows * step - GRID_GAP


def max_grid_cells(cell: int) -> int:
    """About the most cells of ``cell`` pixels a grid of ``MAX_GRID_PIXELS`` holds."""
    return max(1, MAX_GRID_PIXELS // (max(1, cell) + GRID_GAP) ** 2)


def check_grid(n: int, cell: int, cols: int | None = None) -> None:
    """RenderError, before anything is drawn, for a cell size, column count or picture size
    that cannot be made."""
    if isinstance(cell, bool) or not isinstance(cell, int) or cell < 1:
        raise RenderError(f"--size must be a cell size of at least 1 pixel, got {cell!r}")
    if cols is not None and cols < 1:
        raise RenderError(f"--cols must be at least 1, got {cols}")
    c, r, w, h = grid_shape(n, cell, cols)
    if w * h > MAX_GRID_PIXELS:
        raise RenderError(f"{n:,} samples in a {c} x {r} grid of {cell} px cells make a {w:,} x {h:,} picture "
                          f"({w * h / 1e6:,.0f} megapixels, over the {MAX_GRID_PIXELS / 1e6:.0f} megapixel limit); "
                          "draw fewer samples (--index, --n) or smaller cells (--size)")


def make_grid(images: Sequence[np.ndarray], cell: int, cols: int | None = None,
              captions: Sequence[str] | None = None, legend: Sequence[LegendEntry] = ()) -> np.ndarray:
    """Tile RGB images (each at most ``cell`` x ``cell``, centred in its cell) into one (H, W, 3)
    uint8 grid, with the ``legend`` (``legend_strip``) below the cells when there is one."""
    from PIL import Image, ImageDraw

    check_grid(len(images), cell, cols)
    cols, _, width, height = grid_shape(len(images), cell, cols)
    step = cell + GRID_GAP
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    pad = (250, 250, 250)  # a cell's margin around a smaller image
    font = _font(cell)
    for k, im in enumerate(images):
        r, c = divmod(k, cols)
        tile = Image.new("RGB", (cell, cell), pad)
        pic = Image.fromarray(np.asarray(im)[..., :3])
        if max(pic.size) > cell:
            pic.thumbnail((cell, cell), Image.Resampling.LANCZOS)
        tile.paste(pic, ((cell - pic.width) // 2, (cell - pic.height) // 2))
        if captions:
            ImageDraw.Draw(tile).text((6, 4), captions[k], fill=(40, 40, 40), font=font)
        canvas.paste(tile, (c * step, r * step))
    grid = np.asarray(canvas)
    return np.concatenate([grid, legend_strip(legend, width, cell)]) if legend else grid


def save_png(image: np.ndarray, out: str | Path, overwrite: bool = True) -> Path:
    """Write an (H, W, 3|4) uint8 image as PNG, making its folder; atomically, and over an
    existing file only with ``overwrite`` (``posesynth.outputs``)."""
    from PIL import Image

    out = Path(out)
    with atomic_output(out, overwrite) as tmp:
        Image.fromarray(np.asarray(image)).save(tmp, format="PNG")
    return out


def render_store(path: str | Path, out: str | Path, indices: str | Sequence[int] = "0:16", view: str | None = None,
                 keypoint_set: str | None = "smpl24", body_model: str | Path | None = None, size: int = 512,
                 cols: int | None = None, backend: str = "auto", camera_view: int = 0,
                 overwrite: bool = False, progress: bool = False) -> Path:
    """``posesynth render STORE``: a PNG grid of a store's samples; returns the path written.

    ``view`` defaults to ``camera`` for sample stores and ``front`` for training stores.  An
    existing ``out`` is refused unless ``overwrite``, before anything is drawn.  ``progress``:
    a progress bar over the samples drawn.
    """
    from posesynth.body_model import load_body_model

    check_output(out, overwrite)
    check_grid(1, size, cols)
    body = load_body_model(body_model)
    samples = read_store_samples(path, indices, keypoint_set, camera_view, body, limit=max_grid_cells(size))
    check_grid(len(samples), size, cols)
    view = view or ("camera" if samples.cameras is not None else "front")
    return save_grid(samples, body, view, size, cols, backend, out, overwrite, progress)


def save_grid(samples: SampleSet, body: Any, view: str, size: int, cols: int | None, backend: str,
              out: str | Path, overwrite: bool, progress: bool) -> Path:
    """``render_cells`` of ``samples`` tiled into a grid with its legend, written as PNG ``out``."""
    images = render_cells(samples, body, view, size, backend, progress=progress)
    return save_png(make_grid(images, size, cols, samples.captions, legend_entries(samples, view)), out, overwrite)


# ---------------------------------------------------------------------------- from a checkpoint
def sample_checkpoint(checkpoint: str | Path, n: int = 16, label: str | None = None, seed: int = 0,
                      keypoint_set: str | None = "smpl24", body: Any = None,
                      recipe: str | Path | None = None) -> SampleSet:
    """The first ``n`` samples that ``posesynth sample --checkpoint C --seed S [--recipe R]`` would
    write, computed in memory with the sampling pipeline (``posesynth.sampling.BlockSampler``).

    ``checkpoint``: a GAN checkpoint (or a training store, replayed); ``label`` conditions on one
    of its labels; ``recipe``: a sampling recipe (default: ``posesynth/recipes/sample_default.toml``), to
    which ``keypoint_set`` is added if it lacks it.  Whole blocks of the recipe's ``block_size``
    rows are computed (4096 by default, under a second on a CPU) and cut to ``n``.
    """
    from posesynth.body_model import load_body_model
    from posesynth.pose_source import load_pose_source
    from posesynth.sample_recipe import DEFAULT_SAMPLE_RECIPE, resolve_sample_recipe
    from posesynth.sampling import BlockSampler, SampleError

    if n < 1:
        raise RenderError(f"--n must be at least 1, got {n}")
    body = body if body is not None else load_body_model()
    try:
        source = load_pose_source(checkpoint)
        path = DEFAULT_SAMPLE_RECIPE if recipe is None else recipe
        rec = resolve_sample_recipe(path)
        overrides = []
        if label is not None:
            overrides.append(f"sample.label={json.dumps(label)}")
        sets = list(rec["sample"]["keypoint_sets"])
        if keypoint_set and keypoint_set not in sets:
            overrides.append(f"sample.keypoint_sets={json.dumps(sets + [keypoint_set])}")
        if overrides:
            rec = resolve_sample_recipe(path, overrides)
        made_with = getattr(source, "body_model", None)
        if made_with is not None and made_with != body.identity:
            raise RenderError(f"{source.identity} was made with body model {made_with}, not {body.identity}; "
                              "pass that model's file (--body-model)")
        sampler = BlockSampler(source, rec, int(seed), body)
        blocks = [sampler.block(b) for b in range(-(-n // sampler.size))]
    except (SampleError, ValueError) as exc:  # RecipeError and CheckpointError are ValueErrors
        raise RenderError(str(exc)) from None
    arrays = {k: np.concatenate([blk[k] for blk in blocks])[:n] for k in blocks[0]}
    codes = arrays["label"].astype(np.int64)
    names = source.label_names
    captions = [f"#{i}" + (f" {names[c]}" if 0 <= c < len(names) else "") for i, c in enumerate(codes)]
    smpl = (arrays[f"smpl/{k}"].astype(np.float32) for k in ("global_orient", "body_pose", "betas", "transl"))
    out = SampleSet(*smpl, captions=captions, color_keys=np.where(codes >= 0, codes, np.arange(n)),
                    indices=np.arange(n))
    _add_views(out, arrays, keypoint_set, 0, None, str(checkpoint))
    return out


def render_checkpoint(checkpoint: str | Path, out: str | Path, n: int = 16, label: str | None = None, seed: int = 0,
                      view: str | None = None, keypoint_set: str | None = "smpl24",
                      body_model: str | Path | None = None, size: int = 512, cols: int | None = None,
                      backend: str = "auto", recipe: str | Path | None = None, overwrite: bool = False,
                      progress: bool = False) -> Path:
    """``posesynth render --checkpoint C``: ``sample_checkpoint``, then a PNG grid (an existing
    ``out`` only with ``overwrite``; ``progress``: a progress bar over the samples drawn)."""
    from posesynth.body_model import load_body_model

    check_output(out, overwrite)
    check_grid(n, size, cols)
    body = load_body_model(body_model)
    samples = sample_checkpoint(checkpoint, n, label, seed, keypoint_set, body, recipe)
    return save_grid(samples, body, view or "camera", size, cols, backend, out, overwrite, progress)
