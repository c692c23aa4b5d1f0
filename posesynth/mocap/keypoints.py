"""Reading 3D keypoint arrays (.npz, .h5) as a positions-only source for retargeting.

A file holds one (N, J, 3) float array of joint positions, found under one of the
names in ``ARRAY_KEYS`` (or the file's only 3-D array), and optionally:

- ``joint_names`` (J,) strings, or ``layout``: the name of a built-in rig map
  (``h36m17``) whose ``joint_names`` give the column order;
- ``fps``: frames per second (default 50, Human3.6M's rate).

Units are inferred from the skeleton's size (metres, centimetres or millimetres)
and ``up`` says which axis is up in the file (``"y"`` or ``"z"``; Human3.6M's world
is z-up); positions come out in metres, y-up, as everywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posesynth.mocap.motion import MocapFormatError
from posesynth.npz_files import NpzUnreadable, read_npz_arrays

KEYPOINT_SUFFIXES = (".npz", ".h5", ".hdf5")
ARRAY_KEYS = ("keypoints3d", "keypoints_3d", "positions_3d", "positions", "joints3d", "keypoints", "kpts3d")
DEFAULT_FPS = 50.0
_Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


@dataclass(frozen=True, eq=False)
class KeypointClip:
    path: Path
    joint_names: tuple[str, ...]
    positions: np.ndarray  # (T, J, 3) metres, y-up
    fps: float
    layout: str | None  # built-in rig map named by the file, if any
    length_scale: float


def _read_npz(path: Path) -> dict[str, object]:
    try:
        return read_npz_arrays(path, "keypoint clip")
    except NpzUnreadable as exc:
        raise MocapFormatError(path, str(exc)) from None


def _read_h5(path: Path) -> dict[str, object]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            out: dict[str, object] = {k: v for k, v in f.attrs.items()}
            f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
            return out
    except OSError as exc:
        raise MocapFormatError(path, f"not a readable HDF5 file: {exc}") from None


def _pick_array(path: Path, data: dict[str, object]) -> np.ndarray:
    for key in ARRAY_KEYS:
        if key in data:
            arr = np.asarray(data[key])
            break
    else:
        cubes = [k for k, v in data.items() if isinstance(v, np.ndarray) and v.ndim == 3 and v.shape[-1] == 3]
        if len(cubes) != 1:
            raise MocapFormatError(path, f"expected one (N, J, 3) keypoint array (named one of "
                                   f"{', '.join(ARRAY_KEYS)}); found arrays: {', '.join(data) or 'none'}")
        arr = np.asarray(data[cubes[0]])
    if arr.ndim != 3 or arr.shape[-1] != 3 or arr.shape[0] == 0 or not np.issubdtype(arr.dtype, np.number):
        raise MocapFormatError(path, f"keypoints must be a non-empty numeric (N, J, 3) array, got {arr.dtype} {arr.shape}")
    bad = ~np.isfinite(arr).all(axis=(1, 2))
    if bad.any():
        frame = int(np.flatnonzero(bad)[0])
        joint = int(np.flatnonzero(~np.isfinite(arr[frame]).all(-1))[0])
        raise MocapFormatError(path, f"NaN or infinite value at joint {joint}", frame=frame)
    return arr.astype(np.float64)


def _text(value: object) -> str:
    item = np.asarray(value).item()
    return item.decode() if isinstance(item, bytes) else str(item)


def _joint_names(path: Path, data: dict[str, object], num_joints: int,
                 layout: str | None) -> tuple[tuple[str, ...], str | None]:
    """Column names of the keypoint array, from the file or from a layout's rig map."""
    from posesynth.rig_map import RigMapError, load_rig_map

    if "joint_names" in data:
        names = tuple(_text(n) for n in np.asarray(data["joint_names"]).ravel())
    else:
        layout = layout or (_text(data["layout"]) if "layout" in data else None)
        if layout is None:
            raise MocapFormatError(path, "no joint_names in the file and no layout given; pass "
                                   "--keypoint-layout (e.g. h36m17) or store joint_names")
        try:
            rig = load_rig_map(layout)
        except RigMapError as exc:
            raise MocapFormatError(path, str(exc)) from None
        if rig.joint_names is None:
            raise MocapFormatError(path, f"layout {layout!r} does not define a keypoint column order")
        names = rig.joint_names
    if len(names) != num_joints:
        raise MocapFormatError(path, f"{len(names)} joint names for an array of {num_joints} joints")
    return names, layout


def _length_scale_from_extent(positions: np.ndarray) -> float:
    """Metres per file unit from the skeleton's extent: mm if > 300, cm if > 3, else m."""
    extent = float(np.max(positions.max(axis=1) - positions.min(axis=1)))
    return 0.001 if extent > 300 else 0.01 if extent > 3 else 1.0


def read_keypoints(path: str | Path, *, layout: str | None = None, up: str = "y") -> KeypointClip:
    """Read a keypoint array file; see the module docstring for what it may hold."""
    path = Path(path)
    if not path.is_file():
        raise MocapFormatError(path, "file not found")
    if up not in ("y", "z"):
        raise MocapFormatError(path, f"up axis must be 'y' or 'z', got {up!r}")
    data = _read_npz(path) if path.suffix.lower() == ".npz" else _read_h5(path)
    arr = _pick_array(path, data)
    names, layout = _joint_names(path, data, arr.shape[1], layout)
    scale = _length_scale_from_extent(arr)
    positions = arr * scale
    if up == "z":
        positions = positions @ _Z_UP_TO_Y_UP.T
    fps = float(np.asarray(data.get("fps", DEFAULT_FPS)))
    if not fps > 0:
        raise MocapFormatError(path, f"fps must be positive, got {fps}")
    return KeypointClip(path, names, positions, fps, layout, scale)
