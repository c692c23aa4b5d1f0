"""Virtual cameras: a random camera distribution, projection with lens distortion, back-projection.

Conventions (OpenCV's, as everywhere in posesynth):

- ``x_cam = R @ x_world + t``; camera x right, y down, z forward (the optical axis).
- ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``; pixel ``(0, 0)`` is the *centre* of the top-left
  pixel, so an image of width ``W`` spans ``x`` in ``[-0.5, W - 0.5)`` and its centre is at
  ``(W - 1) / 2``.
- Lens distortion is Brown-Conrady as in OpenCV, ``(k1, k2, p1, p2)``, applied to the normalised
  coordinates ``(x, y) = (X / Z, Y / Z)``::

      r2 = x^2 + y^2,   radial = 1 + k1 r2 + k2 r2^2
      x' = x radial + 2 p1 x y + p2 (r2 + 2 x^2)
      y' = y radial + p1 (r2 + 2 y^2) + 2 p2 x y
      u = fx x' + cx,   v = fy y' + cy

  Only where the polynomial is valid (``distortion_limit``): points far outside the field of view
  stay undistorted rather than folding back into the image.

Shapes: ``B`` samples, ``V`` views per sample, ``N`` points.  World: metres, +y up, a body with
zero global orientation faces +z with its left side on +x.

Camera placement (``sample_cameras``): the camera looks at the centre of the body (the midpoint of
the joints' bounding box, plus a uniform jitter in a cube of half-side ``lookat_jitter_m``) from
``distance_m`` away.  ``azimuth_deg`` turns it about the vertical through that point: 0 puts the
camera in front of the body (on +z, looking back along -z), +90 on the body's left (+x), 180
behind it.  ``elevation_deg`` raises it: positive means the camera is above the look-at point and
looks down.  ``roll_deg`` turns the camera about its optical axis after aiming; a positive roll
turns the image content clockwise on screen.  Every range is sampled uniformly.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from posesynth.config import check_table
from posesynth.resources import packaged_path

CAMERA_PRESETS_DIR = packaged_path("recipes", "cameras")
CAMERA_PRESETS = ("h36m", "mpi_inf_3dhp", "in_the_wild", "surveillance")
DISTORTION_KEYS = ("k1", "k2", "p1", "p2")
CAMERA_CONVENTION = (
    "OpenCV: x_cam = R @ x_world + t; K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]; camera x right, "
    "y down, z forward; pixel (0, 0) is the centre of the top-left pixel; distortion (k1, k2, p1, p2) "
    "is Brown-Conrady on normalised coordinates as in cv2.projectPoints; world metres, +y up."
)

# Half the body's extent around each joint (m), for keeping the whole body in frame: 0.12 m
# covers limb girth, hands (fingertips are about 0.10 m past the hand joint) and feet; the head
# joint sits at the skull base, 0.16-0.17 m below the top of the head on the mean shape, so the
# head gets the larger of 0.20 m and 2.5 times its neck -> head bone (0.081 m on the mean shape).
BODY_EXTENT_M = 0.12
HEAD_EXTENT_M = 0.20
HEAD_EXTENT_PER_NECK = 2.5
KEYPOINT_MARGIN_M = 0.02  # around extra keypoints (surface points: nose, head top, ...)
_HEAD, _NECK = 15, 12
_NEAR_M = 0.1  # the body stays at least this far in front of the camera
_FIT_CHUNK = 1 << 16  # (sample, view, point) triples per block when fitting the distance
_NUM_DRAWS = 14  # uniforms per view: f, cx, cy, distance, azimuth, elevation, roll, jitter xyz, k1 k2 p1 p2


# ---------------------------------------------------------------------------- distribution
def _range(name: str, value: Any) -> tuple[float, float]:
    """A number (a fixed value) or ``[lo, hi]`` -> ``(lo, hi)``; ValueError naming ``name``."""
    if isinstance(value, bool):
        raise ValueError(f"camera: {name} must be a number or [lo, hi], got {value!r}")
    if isinstance(value, (int, float)):
        value = (value, value)
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"camera: {name} must be a number or [lo, hi], got {value!r}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        raise ValueError(f"camera: {name} must hold two finite numbers, got {value!r}")
    lo, hi = float(value[0]), float(value[1])
    if lo > hi:
        raise ValueError(f"camera: {name} = [{lo}, {hi}] has lo > hi")
    return lo, hi


def _check_within(name: str, rng: tuple[float, float], lo: float, hi: float, open_: bool = False) -> None:
    bad = (rng[0] <= lo or rng[1] >= hi) if open_ else (rng[0] < lo or rng[1] > hi)
    if bad:
        brackets = "()" if open_ else "[]"
        raise ValueError(f"camera: {name} = {list(rng)} must lie in {brackets[0]}{lo}, {hi}{brackets[1]}")


def _nonneg(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"camera: {name} must be a finite number >= 0, got {value!r}")
    return float(value)


@dataclass(frozen=True, kw_only=True)
class CameraDistribution:
    """A distribution of pinhole cameras around a subject; every range is ``(lo, hi)``, uniform.

    Give exactly one of ``focal_px`` (fx = fy, pixels) and ``fov_deg`` (horizontal field of view,
    converted per draw with ``f = W / 2 / tan(fov / 2)``).  ``distortion`` maps any of
    ``k1, k2, p1, p2`` to a range (missing ones are 0); ``None`` means an ideal pinhole.
    """

    image_size: tuple[int, int]  # (W, H) pixels
    distance_m: tuple[float, float]
    focal_px: tuple[float, float] | None = None
    fov_deg: tuple[float, float] | None = None
    principal_jitter_px: float = 0.0  # cx, cy uniform in centre +- this
    azimuth_deg: tuple[float, float] = (-180.0, 180.0)
    elevation_deg: tuple[float, float] = (0.0, 0.0)
    roll_deg: tuple[float, float] = (0.0, 0.0)
    lookat_jitter_m: float = 0.0  # look-at point uniform in a cube of this half-side
    distortion: Mapping[str, tuple[float, float]] | None = None
    allow_truncation: bool = False
    views: int = 1

    def __post_init__(self) -> None:
        size = self.image_size
        if (not isinstance(size, (list, tuple)) or len(size) != 2
                or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)):
            raise ValueError(f"camera: image_size must be [W, H], two positive integers, got {size!r}")
        set_ = object.__setattr__
        set_(self, "image_size", (int(size[0]), int(size[1])))
        if (self.focal_px is None) == (self.fov_deg is None):
            raise ValueError("camera: give exactly one of focal_px and fov_deg")
        if self.focal_px is not None:
            set_(self, "focal_px", _range("focal_px", self.focal_px))
            _check_within("focal_px", self.focal_px, 0.0, math.inf, open_=True)
        else:
            set_(self, "fov_deg", _range("fov_deg", self.fov_deg))
            _check_within("fov_deg", self.fov_deg, 0.0, 180.0, open_=True)
        for name in ("distance_m", "azimuth_deg", "elevation_deg", "roll_deg"):
            set_(self, name, _range(name, getattr(self, name)))
        _check_within("distance_m", self.distance_m, 0.0, math.inf, open_=True)
        _check_within("elevation_deg", self.elevation_deg, -90.0, 90.0, open_=True)
        set_(self, "principal_jitter_px", _nonneg("principal_jitter_px", self.principal_jitter_px))
        set_(self, "lookat_jitter_m", _nonneg("lookat_jitter_m", self.lookat_jitter_m))
        set_(self, "distortion", _distortion(self.distortion))
        if not isinstance(self.allow_truncation, bool):
            raise ValueError(f"camera: allow_truncation must be true or false, got {self.allow_truncation!r}")
        if isinstance(self.views, bool) or not isinstance(self.views, int) or self.views < 1:
            raise ValueError(f"camera: views must be an integer >= 1, got {self.views!r}")

    @classmethod
    def from_dict(cls, table: Mapping[str, Any]) -> CameraDistribution:
        """From a recipe's ``[camera]`` table; ValueError naming any unknown, missing or bad key."""
        check_table("camera", table, {f.name for f in fields(cls)})
        missing = [k for k in ("image_size", "distance_m") if k not in table]
        if missing:
            raise ValueError(f"camera: missing key(s) {missing}")
        return cls(**dict(table))

    def to_dict(self) -> dict[str, Any]:
        """A TOML-ready table (lists, no ``None``) that ``from_dict`` reads back."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = {k: list(v) for k, v in value.items()}
            out[f.name] = value
        return out


def _distortion(value: Any) -> dict[str, tuple[float, float]] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"camera: distortion must be a table of k1, k2, p1, p2 ranges, got {value!r}")
    unknown = sorted(set(value) - set(DISTORTION_KEYS))
    if unknown:
        raise ValueError(f"camera: distortion has unknown key(s) {unknown}; known: {list(DISTORTION_KEYS)}")
    return {k: _range(f"distortion.{k}", value.get(k, 0.0)) for k in DISTORTION_KEYS}


def load_camera_preset(name_or_path: str | Path) -> CameraDistribution:
    """A camera preset by name (``h36m``, ``mpi_inf_3dhp``, ``in_the_wild``, ``surveillance``,
    from ``posesynth/recipes/cameras/``) or any TOML file with a ``[camera]`` table."""
    path = Path(name_or_path)
    if str(name_or_path) in CAMERA_PRESETS:
        path = CAMERA_PRESETS_DIR / f"{name_or_path}.toml"
    elif not path.is_file():
        raise ValueError(f"camera preset {str(name_or_path)!r}: not a preset ({', '.join(CAMERA_PRESETS)}) "
                         "nor a TOML file")
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: cannot read camera preset ({exc})") from exc
    if "camera" not in doc:
        raise ValueError(f"{path}: no [camera] table")
    try:
        return CameraDistribution.from_dict(doc["camera"])
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


# ---------------------------------------------------------------------------- cameras
@dataclass(frozen=True)
class Cameras:
    """``V`` cameras for each of ``B`` samples (torch tensors, one device and float dtype)."""

    K: torch.Tensor  # (B, V, 3, 3)
    R: torch.Tensor  # (B, V, 3, 3) world -> camera
    t: torch.Tensor  # (B, V, 3) metres
    distortion: torch.Tensor  # (B, V, 4) k1, k2, p1, p2
    image_size: torch.Tensor  # (B, V, 2) int32 (W, H)

    def __post_init__(self) -> None:
        B, V = self.K.shape[:2]
        want = {"K": (B, V, 3, 3), "R": (B, V, 3, 3), "t": (B, V, 3), "distortion": (B, V, 4),
                "image_size": (B, V, 2)}
        for name, shape in want.items():
            if tuple(getattr(self, name).shape) != shape:
                raise ValueError(f"Cameras.{name} must be {shape}, got {tuple(getattr(self, name).shape)}")

    def __len__(self) -> int:
        return self.K.shape[0]

    @property
    def views(self) -> int:
        return self.K.shape[1]

    @property
    def centres(self) -> torch.Tensor:
        """Camera centres in the world (B, V, 3): ``-R^T t``."""
        return -(self.R.transpose(-1, -2) @ self.t.unsqueeze(-1)).squeeze(-1)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Cameras:
        """The same cameras on ``device``, float tensors in ``dtype`` (image_size stays int32)."""
        def move(x: torch.Tensor) -> torch.Tensor:
            return x.to(device=device, dtype=dtype if x.is_floating_point() else None)

        return Cameras(move(self.K), move(self.R), move(self.t), move(self.distortion),
                       self.image_size.to(device=device))

    def __getitem__(self, index: Any) -> Cameras:
        """Rows of the batch (a slice, an index tensor or a mask)."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        return Cameras(self.K[index], self.R[index], self.t[index], self.distortion[index],
                       self.image_size[index])


def _check_points(name: str, x: torch.Tensor, last: int, dims: int) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != dims or x.shape[-1] != last:
        want = "(" + ", ".join(["*"] * (dims - 1) + [str(last)]) + ")"
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a tensor of shape {want}, got {got}")


def look_at_rotation(forward: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """World -> camera rotation (..., 3, 3) of a camera looking along ``forward`` (..., 3) with
    world +y up in the image, then rolled by ``roll`` (...) radians about its optical axis."""
    z = torch.nn.functional.normalize(forward, dim=-1)
    up = torch.zeros_like(z)
    up[..., 1] = 1.0
    x = torch.nn.functional.normalize(torch.cross(z, up, dim=-1), dim=-1)  # right
    y = torch.cross(z, x, dim=-1)  # down
    R = torch.stack([x, y, z], dim=-2)  # rows are the camera axes in world coordinates
    c, s = torch.cos(roll), torch.sin(roll)
    o, i = torch.zeros_like(c), torch.ones_like(c)
    roll_m = torch.stack([c, -s, o, s, c, o, o, o, i], dim=-1).reshape(roll.shape + (3, 3))
    return roll_m @ R


def _lerp(rng: tuple[float, float], u: torch.Tensor) -> torch.Tensor:
    return rng[0] + (rng[1] - rng[0]) * u


def _draw(dist: CameraDistribution, B: int, generator: torch.Generator) -> torch.Tensor:
    """All uniforms of a block, (B, V, 14) float64 on the CPU, in a fixed order."""
    if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
        raise ValueError("generator must be a CPU torch.Generator (draws are made on the CPU)")
    return torch.rand((B, dist.views, _NUM_DRAWS), generator=generator, dtype=torch.float64)


def _intrinsics(dist: CameraDistribution, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """K (B, V, 3, 3) and distortion (B, V, 4) from the uniforms ``u`` (B, V, 14)."""
    W, H = dist.image_size
    if dist.focal_px is not None:
        f = _lerp(dist.focal_px, u[..., 0])
    else:
        f = (W / 2) / torch.tan(torch.deg2rad(_lerp(dist.fov_deg, u[..., 0])) / 2)
    j = dist.principal_jitter_px
    cx = (W - 1) / 2 + _lerp((-j, j), u[..., 1])
    cy = (H - 1) / 2 + _lerp((-j, j), u[..., 2])
    o, i = torch.zeros_like(f), torch.ones_like(f)
    K = torch.stack([f, o, cx, o, f, cy, o, o, i], dim=-1).reshape(u.shape[:2] + (3, 3))
    if dist.distortion is None:
        return K, torch.zeros(u.shape[:2] + (4,), dtype=u.dtype, device=u.device)
    d = torch.stack([_lerp(dist.distortion[k], u[..., 10 + n]) for n, k in enumerate(DISTORTION_KEYS)], -1)
    return K, d


def _extent(joints: torch.Tensor, extra: int) -> torch.Tensor:
    """Margin (B, J + extra) in metres around each of the 24 joints and each extra keypoint."""
    B, J = joints.shape[:2]
    m = torch.full((B, J + extra), BODY_EXTENT_M, dtype=joints.dtype, device=joints.device)
    m[:, J:] = KEYPOINT_MARGIN_M
    if J > _HEAD:
        neck = (joints[:, _HEAD] - joints[:, _NECK]).norm(dim=-1)
        m[:, _HEAD] = (HEAD_EXTENT_PER_NECK * neck).clamp_min(HEAD_EXTENT_M)
    return m


def sample_cameras(dist: CameraDistribution, joints_world: torch.Tensor, generator: torch.Generator,
                   device: torch.device | str | None = None,
                   keypoints_world: torch.Tensor | None = None) -> Cameras:
    """Draw ``dist.views`` cameras around each body.

    Args:
        dist: the camera distribution.
        joints_world: (B, 24, 3) world joints (metres); they set the look-at point and, unless
            ``dist.allow_truncation``, the distance that keeps the whole body in frame.
        generator: a CPU ``torch.Generator``.  Exactly ``B * V * 14`` float64 uniforms are drawn
            from it, in one call, whatever the distribution (unused ones are drawn too), so the
            cameras depend only on the generator's state, ``B``, ``V`` and the joints.
        device: where the cameras live (default: the joints' device).
        keypoints_world: (B, N, 3), optional: more points that must be in frame when truncation is
            off (pass the world keypoints of every set you store: the head top and face points lie
            outside the joints' margins on some bodies).  They do not move the look-at point.

    Returns:
        ``Cameras`` in the joints' float dtype.  Geometry is computed in float64 and rounded once.

    Truncation: when it is not allowed, each camera is moved back along its line of sight (look-at
    point, direction and roll unchanged) just far enough that a sphere of ``BODY_EXTENT_M`` around
    every joint (around the head joint: ``HEAD_EXTENT_M`` or ``HEAD_EXTENT_PER_NECK`` times the
    neck -> head bone, the larger) and of ``KEYPOINT_MARGIN_M`` around every one of
    ``keypoints_world`` projects inside the image.  It is a closed form: each sphere's x/y extent
    over its nearest depth must fit the room between the principal point and the image edge (with
    lens distortion, that room is shrunk by a bound on how far the lens distortion can push
    a point outward).  The drawn distance is a lower bound: cameras are never moved closer.
    """
    _check_points("joints_world", joints_world, 3, 3)
    if keypoints_world is not None:
        _check_points("keypoints_world", keypoints_world, 3, 3)
        if keypoints_world.shape[0] != joints_world.shape[0]:
            raise ValueError(f"keypoints_world has {keypoints_world.shape[0]} samples, joints_world "
                             f"{joints_world.shape[0]}")
    device = torch.device(device) if device is not None else joints_world.device
    B = joints_world.shape[0]
    u = _draw(dist, B, generator).to(device)
    joints = joints_world.to(device=device, dtype=torch.float64)
    K, distortion = _intrinsics(dist, u)
    az, el = torch.deg2rad(_lerp(dist.azimuth_deg, u[..., 4])), torch.deg2rad(_lerp(dist.elevation_deg, u[..., 5]))
    toward_camera = torch.stack([torch.sin(az) * torch.cos(el), torch.sin(el), torch.cos(az) * torch.cos(el)], -1)
    R = look_at_rotation(-toward_camera, torch.deg2rad(_lerp(dist.roll_deg, u[..., 6])))
    j = dist.lookat_jitter_m
    target = 0.5 * (joints.amin(1) + joints.amax(1)).unsqueeze(1) + _lerp((-j, j), u[..., 7:10])  # (B, V, 3)
    distance = _lerp(dist.distance_m, u[..., 3])
    if not dist.allow_truncation:
        points, m = joints, _extent(joints, 0)
        if keypoints_world is not None:
            points = torch.cat([joints, keypoints_world.to(device=device, dtype=torch.float64)], dim=1)
            m = _extent(joints, keypoints_world.shape[1])
        distance = _fit_distance(points, m, target, R, K, distortion, dist.image_size, distance)
    centre = target + distance.unsqueeze(-1) * toward_camera
    t = -(R @ centre.unsqueeze(-1)).squeeze(-1)
    size = torch.tensor(dist.image_size, dtype=torch.int32, device=device).expand(B, dist.views, 2)
    dtype = joints_world.dtype if joints_world.is_floating_point() else torch.float32
    return Cameras(K.to(dtype), R.to(dtype), t.to(dtype), distortion.to(dtype), size.contiguous())


def _fit_distance(points: torch.Tensor, m: torch.Tensor, target: torch.Tensor, R: torch.Tensor, K: torch.Tensor,
                  distortion: torch.Tensor, image_size: tuple[int, int], distance: torch.Tensor) -> torch.Tensor:
    """Smallest distance >= ``distance`` (B, V) that keeps a sphere of radius ``m`` (B, N) around
    each of ``points`` (B, N, 3) in frame (see ``sample_cameras``).  target (B, V, 3),
    R, K (B, V, 3, 3), distortion (B, V, 4).  Works through cache-sized blocks of samples."""
    W, H = image_size
    eps = 1e-3  # pixels kept clear of the border
    f, c = _focal_centre(K)  # (B, V, 1, 2)
    room_hi = (torch.tensor([W - 0.5, H - 0.5], dtype=f.dtype, device=f.device) - eps - c) / f  # normalised
    room_lo = (c + 0.5 - eps) / f
    if bool((distortion != 0).any()):
        room_hi, room_lo = _undistorted_room(room_hi, room_lo, distortion)
    inv = torch.cat([1 / room_hi, 1 / room_lo], dim=-1)  # (B, V, 1, 4): x+, y+, x-, y-
    offset = (R @ target.unsqueeze(-1))  # (B, V, 3, 1)
    step = max(1, _FIT_CHUNK // max(1, points.shape[1] * R.shape[1]))
    need = torch.cat([_needed(points[i:i + step], m[i:i + step], R[i:i + step], offset[i:i + step],
                              inv[i:i + step]) for i in range(0, points.shape[0], step)])
    return torch.maximum(distance, need)


def _needed(points, m, R, offset, inv) -> torch.Tensor:
    """``_fit_distance`` for one block: the distance (B, V) each camera needs.  points (B, N, 3),
    m (B, N), R (B, V, 3, 3), offset ``R @ target`` (B, V, 3, 1), inv (B, V, 1, 4) the inverse
    normalised room on each side (x+, y+, x-, y-)."""
    x, y, z = (torch.einsum("bvij,bnj->bvin", R, points) - offset).unbind(2)  # (B, V, N); depth = z + d
    m = m.unsqueeze(1)  # (B, 1, N)
    lateral = torch.maximum((m + x) * inv[..., 0], (m - x) * inv[..., 2])
    lateral = torch.maximum(lateral, torch.maximum((m + y) * inv[..., 1], (m - y) * inv[..., 3]))
    return (lateral.clamp_min(_NEAR_M) - z + m).amax(-1)


def _undistorted_room(room_hi: torch.Tensor, room_lo: torch.Tensor, coeffs: torch.Tensor):
    """Shrink the normalised room (B, V, 1, 2) on each side of the principal point so that any
    point inside it stays inside the original room after distortion ``coeffs`` (B, V, 4).

    Inside the room ``r^2 <= R^2``; there the radial factor is at most its maximum ``rho`` over
    ``[0, R^2]`` (>= 1) and the tangential shift at most ``(|p1| + 3 |p2|) R^2`` in x and
    ``(3 |p1| + |p2|) R^2`` in y, so ``room' = (room - shift) / rho`` is enough (a bound, tight
    for small distortion)."""
    k1, k2, p1, p2 = (x[..., None, None] for x in coeffs.unbind(-1))  # (B, V, 1, 1)
    R2 = (torch.maximum(room_hi, room_lo) ** 2).sum(-1, keepdim=True)
    radial = lambda x: 1 + k1 * x + k2 * x * x  # noqa: E731
    vertex = (-k1 / (2 * k2).where(k2 != 0, torch.ones_like(k2))).clamp(0).minimum(R2)
    rho = torch.maximum(torch.maximum(radial(R2), radial(vertex)), torch.ones_like(R2))
    shift = torch.cat([p1.abs() + 3 * p2.abs(), 3 * p1.abs() + p2.abs()], -1) * R2
    return (room_hi - shift) / rho, (room_lo - shift) / rho


# ---------------------------------------------------------------------------- projection
def distort(xn: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """Brown-Conrady (OpenCV) distortion of normalised coordinates ``xn`` (..., 2) with
    ``coeffs`` (..., 4) = k1, k2, p1, p2 (broadcast against ``xn``'s leading shape)."""
    x, y = xn[..., 0], xn[..., 1]
    k1, k2, p1, p2 = coeffs.unbind(-1)
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + k2 * r2)
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return torch.stack([xd, yd], dim=-1)


def undistort(xd: torch.Tensor, coeffs: torch.Tensor, iterations: int = 20) -> torch.Tensor:
    """Inverse of ``distort`` by fixed-point iteration (as cv2.undistortPoints): ``xd`` (..., 2)
    distorted normalised coordinates, ``coeffs`` (..., 4) -> (..., 2)."""
    xn = xd
    for _ in range(iterations):
        xn = xn + (xd - distort(xn, coeffs))
    return xn


def _focal_centre(K: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(fx, fy) and (cx, cy), each (B, V, 1, 2), from K (B, V, 3, 3)."""
    f = torch.stack([K[..., 0, 0], K[..., 1, 1]], -1).unsqueeze(2)
    c = torch.stack([K[..., 0, 2], K[..., 1, 2]], -1).unsqueeze(2)
    return f, c


def distortion_limit(K: torch.Tensor, image_size: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """Largest squared normalised radius (B, V) where the lens (``distort_within_limit``) distorts.

    Brown-Conrady polynomials turn back at large radii (barrel distortion maps far points back
    toward the centre), which would put points far outside the field of view inside the image.
    Distortion is applied up to 1.2 times the radius of the image's farthest corner, and never
    past the first radius where the radial map ``r (1 + k1 r^2 + k2 r^4)`` stops increasing;
    points beyond stay undistorted, far outside the image.  K (B, V, 3, 3), image_size (B, V, 2),
    coeffs (B, V, 4).
    """
    f, c = _focal_centre(K)
    size = image_size.to(K.dtype).unsqueeze(2)  # (B, V, 1, 2)
    far = torch.maximum((c + 0.5) / f, (size - 0.5 - c) / f)  # farthest edge, each axis
    r2 = (1.2 ** 2) * (far * far).sum(-1).squeeze(-1)
    k1, k2 = coeffs[..., 0], coeffs[..., 1]
    # roots x = r^2 of d/dr [r (1 + k1 r^2 + k2 r^4)] = 1 + 3 k1 x + 5 k2 x^2
    inf = torch.full_like(k1, torch.inf)
    linear = torch.where(k1 < 0, -1 / (3 * k1).clamp(max=-1e-30), inf)
    disc = (9 * k1 * k1 - 20 * k2).clamp_min(0).sqrt()
    k2s = torch.where(k2.abs() < 1e-30, torch.full_like(k2, 1e-30), k2)
    roots = torch.stack([(-3 * k1 - disc) / (10 * k2s), (-3 * k1 + disc) / (10 * k2s)], -1)
    real = (9 * k1 * k1 - 20 * k2 >= 0).unsqueeze(-1) & (roots > 0)
    quad = torch.where(real, roots, torch.full_like(roots, torch.inf)).amin(-1)
    fold = torch.where(k2.abs() < 1e-30, linear, quad)
    return torch.minimum(r2, fold)


def distort_within_limit(xn: torch.Tensor, coeffs: torch.Tensor, limit: torch.Tensor) -> torch.Tensor:
    """The lens: ``distort`` where ``|xn|^2 < limit``, ``xn`` unchanged elsewhere.

    The one lens model: ``project`` uses it, and so does rendering (``posesynth.render.camera``;
    its GL vertex shader applies the same rule with the limit as a uniform).

    Args:
        xn: (..., N, 2) normalised image coordinates ``(X / Z, Y / Z)``.
        coeffs: (..., 4) k1, k2, p1, p2.
        limit: (...) squared normalised radius (``distortion_limit``).

    Returns:
        (..., N, 2) distorted normalised coordinates.
    """
    inside = (xn * xn).sum(-1) < limit.unsqueeze(-1)
    return torch.where(inside.unsqueeze(-1), distort(xn, coeffs.unsqueeze(-2)), xn)


def project(points_world: torch.Tensor, cams: Cameras) -> tuple[torch.Tensor, torch.Tensor]:
    """Project world points into every view.

    Args:
        points_world: (B, N, 3) metres.
        cams: ``Cameras`` with B samples and V views.

    Returns:
        pixels (B, V, N, 2), with the lens distortion applied (inside ``distortion_limit``), and
        points_cam (B, V, N, 3).  Points at or behind the camera (depth <= 0) get meaningless
        pixels: mask them with their depth (``posesynth.visibility.in_frame`` takes it).
    """
    _check_points("points_world", points_world, 3, 3)
    if points_world.shape[0] != len(cams):
        raise ValueError(f"points_world has {points_world.shape[0]} samples, cams {len(cams)}")
    points_cam = torch.einsum("bvij,bnj->bvni", cams.R, points_world) + cams.t.unsqueeze(2)
    z = points_cam[..., 2:]
    z = torch.where(z.abs() < 1e-9, torch.full_like(z, 1e-9), z)
    xn = points_cam[..., :2] / z
    if bool((cams.distortion != 0).any()):
        xn = distort_within_limit(xn, cams.distortion, distortion_limit(cams.K, cams.image_size, cams.distortion))
    f, c = _focal_centre(cams.K)
    return xn * f + c, points_cam


def backproject(pixels: torch.Tensor, depth: torch.Tensor, cams: Cameras) -> torch.Tensor:
    """World points (B, V, N, 3) from pixels (B, V, N, 2) and their camera depth (B, V, N).

    Exact for undistorted cameras; with distortion the pixels are first undistorted iteratively
    (accurate to well under a micro-pixel for moderate distortion).
    """
    _check_points("pixels", pixels, 2, 4)
    if depth.shape != pixels.shape[:-1]:
        raise ValueError(f"depth must be {tuple(pixels.shape[:-1])}, got {tuple(depth.shape)}")
    if pixels.shape[:2] != cams.K.shape[:2]:
        raise ValueError(f"pixels are {tuple(pixels.shape[:2])} samples x views, cams {tuple(cams.K.shape[:2])}")
    f, c = _focal_centre(cams.K)
    xn = (pixels - c) / f
    if bool((cams.distortion != 0).any()):
        xn = undistort(xn, cams.distortion.unsqueeze(2))
    points_cam = torch.cat([xn * depth.unsqueeze(-1), depth.unsqueeze(-1)], dim=-1)
    return torch.einsum("bvji,bvnj->bvni", cams.R, points_cam - cams.t.unsqueeze(2))
