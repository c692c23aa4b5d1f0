"""Cameras to render through: a sample's own OpenCV camera (``RenderCamera``), its crops and
resamplings, the GL projection matrix that reproduces it, canonical views and framing windows.

The lens is ``posesynth.cameras``' (``distort_within_limit``, inside ``distortion_limit``), so a
rendered vertex lands where the store's 2D keypoints put that point, in the image and out of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from posesynth.cameras import distort_within_limit, distortion_limit

NEAR, FAR = 0.05, 1000.0  # clipping planes, metres


@dataclass(frozen=True)
class RenderCamera:
    """One OpenCV camera to render through.

    ``K`` (3, 3) intrinsics, ``R`` (3, 3) and ``t`` (3,) world -> camera
    (``x_cam = R @ x_world + t``), the image ``width`` and ``height`` in pixels, and
    ``distortion`` (4,) Brown-Conrady ``k1, k2, p1, p2`` (zeros: none).  ``distortion_limit``:
    the squared normalised radius within which the lens distorts (``posesynth.cameras.
    distortion_limit``); by default that of this camera's own image, and kept by ``scaled`` and
    ``window``, whose images are parts of this one's.
    """

    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    width: int
    height: int
    distortion: np.ndarray = field(default_factory=lambda: np.zeros(4))
    distortion_limit: float | None = None

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
        if self.distortion_limit is None:
            object.__setattr__(self, "distortion_limit", self._own_limit())

    def _own_limit(self) -> float:
        """``posesynth.cameras.distortion_limit`` of this camera and its own image."""
        size = torch.tensor([[[self.width, self.height]]])
        coeffs = torch.from_numpy(self.distortion)[None, None]
        return float(distortion_limit(torch.from_numpy(self.K)[None, None], size, coeffs)[0, 0])

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
        """World points (N, 3) -> pixels (N, 2) through the lens (``lens``), and depth z (N,) in metres."""
        cam = np.asarray(points, dtype=np.float64) @ self.R.T + self.t
        z = cam[:, 2]
        safe = np.where(np.abs(z) < 1e-9, 1e-9, z)
        xy = self.lens(cam[:, :2] / safe[:, None])
        u = self.K[0, 0] * xy[:, 0] + self.K[0, 1] * xy[:, 1] + self.K[0, 2]
        v = self.K[1, 1] * xy[:, 1] + self.K[1, 2]
        return np.stack([u, v], axis=-1), z

    def lens(self, xn: np.ndarray) -> np.ndarray:
        """Normalised image points (N, 2) -> distorted (N, 2): ``posesynth.cameras.distort_within_limit``."""
        if not self.distortion.any():
            return xn
        out = distort_within_limit(torch.from_numpy(np.asarray(xn, dtype=np.float64))[None],
                                   torch.from_numpy(self.distortion)[None],
                                   torch.tensor([self.distortion_limit], dtype=torch.float64))
        return out[0].numpy()


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


def gl_projection(K: np.ndarray, width: int, height: int, near: float = NEAR, far: float = FAR) -> np.ndarray:
    """The 4x4 GL projection (acting on OpenCV camera coordinates) that reproduces K exactly.

    NDC x = -1 is the left edge of pixel column 0 (``u = -0.5``) and NDC y = -1 the top edge
    of row 0 (``v = -0.5``): y is *not* flipped, so GL's first framebuffer row, which
    ``glReadPixels`` returns first, is the image's top row.  Depth: z = near -> -1, far -> +1;
    ``w_clip = z``.  (The shader applies this matrix after the per-vertex lens, ``RenderCamera.lens``.)
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
