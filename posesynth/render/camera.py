"""Cameras to render through: a sample's own OpenCV camera (``RenderCamera``), its crops and
resamplings, the GL projection matrix that reproduces it, canonical views and framing windows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

NEAR, FAR = 0.05, 1000.0  # clipping planes, metres


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
