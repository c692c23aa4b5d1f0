"""The ``h36m`` export (sample stores): Human3.6M's prepared files for VideoPose3D.

``data_3d_h36m.npz`` and ``data_2d_h36m_<name>_<set2d>.npz`` are laid out exactly as the files
VideoPose3D's ``data/prepare_data_h36m.py`` makes from Human3.6M, so its pristine ``run.py -d h36m
-k <name>_<set2d>`` trains on them (``posesynth/export/videopose3d.py``: what the family shares):

- ``positions_3d[subject][action]``: (T, 32, 3) float32, Human3.6M's world (metres, right-handed,
  +z up, floor at z = 0), Human3.6M's 32-joint skeleton.  posesynth's ``h36m17`` keypoints sit at
  the 17 indices VideoPose3D's loader keeps (``H36M_KEPT``); each of the other 15 (toes, hand
  ends, the spine base and the shoulder anchors, which the loader removes) is a copy of its
  nearest kept ancestor in Human3.6M's tree, so every bone the loader does not keep has length 0.
- Subjects ``S1, S5, S6, S7, S8`` (training) and ``S9, S11`` (test), ``run.py``'s defaults.
- ``positions_2d[subject][action]``: a list of 4 (T, J2, 2) float32 pixel arrays, the 2D keypoint set
  (``h36m17`` by default, ``coco17`` as VideoPose3D's Detectron files) projected through that
  subject's four Human3.6M cameras (``h36m_cameras.toml``: the published calibration, as in
  VideoPose3D's ``common/h36m_dataset.py``) with Human3.6M's lens model (``project_h36m``), as
  ``prepare_data_h36m.py`` computes its ground-truth 2D; ``metadata``: ``num_joints``,
  ``keypoints_symmetry`` (and ``layout_name``, ``keypoint_set``, ``joint_names``,
  ``keypoint_set_3d``).
- ``sample_index[subject][action]`` (T,): each frame's store row; and the plain arrays
  ``joint_names`` (the 32), ``units``, ``up_axis``, ``frame``.  VideoPose3D ignores them.

From the store's world (+y up, the body facing +z over the origin) to Human3.6M's: sample ``i``
is turned about the vertical axis through the origin (over which the store puts each body's SMPL
pelvis joint) by ``2 pi frac(i (sqrt 5 - 1) / 2)``: every body would otherwise face the same way,
and the four fixed cameras would see it from four directions only; the golden-ratio sequence
spreads the headings evenly, whatever the chunking.  Then ``(x, y, z) -> (x, -z, y)``, a
rotation: +y up becomes +z up.  What is lost: posesynth's own cameras and their distribution
(intrinsics, distances, elevations, lens distortion), the noisy 2D and the visibility flags; the
2D is a re-projection of the 3D through Human3.6M's four cameras.
"""

from __future__ import annotations

import functools
import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import zarr

from posesynth.export import ExportError, ExportOptions
from posesynth.export.videopose3d import (Rows, check_request, described, empty, keypoints_metadata, per_view,
                                          placements, save, subject_rows)
from posesynth.export.views import view_chunks
from posesynth.outputs import check_output
from posesynth.stores.arrays import read_array
from posesynth.stores.samples import LABEL_PATH, keypoints_path

TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS = ("S9", "S11")
# VideoPose3D's 32-joint Human3.6M tree (common/h36m_dataset.py, h36m_skeleton) and the 17
# joints its loader keeps (all but remove_joints' list), in h36m17's order.
H36M_PARENTS = (-1, 0, 1, 2, 3, 4, 0, 6, 7, 8, 9, 0, 11, 12, 13, 14, 12, 16, 17, 18, 19, 20, 19, 22,
                12, 24, 25, 26, 27, 28, 27, 30)
H36M_KEPT = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def _nearest_kept() -> tuple[int, ...]:
    """For each of the 32 joints, the h36m17 index of itself or of its nearest kept ancestor."""
    out = []
    for joint in range(len(H36M_PARENTS)):
        while joint not in H36M_KEPT:
            joint = H36M_PARENTS[joint]
        out.append(H36M_KEPT.index(joint))
    return tuple(out)


H36M_FROM_17 = _nearest_kept()


@dataclass(frozen=True)
class H36MCamera:
    """One calibrated Human3.6M camera: ``x_cam = R @ x_world + t`` (metres, world +z up), then
    Human3.6M's lens model (``project_h36m``)."""

    id: str
    R: np.ndarray  # (3, 3) world -> camera
    t: np.ndarray  # (3,) metres
    focal: np.ndarray  # (2,) pixels
    centre: np.ndarray  # (2,) pixels
    radial: np.ndarray  # (3,) k1, k2, k3
    tangential: np.ndarray  # (2,) p1, p2


def quaternion_matrix(q: np.ndarray) -> np.ndarray:
    """(4,) quaternion ``[w, x, y, z]`` -> (3, 3) the rotation ``v -> q v q*`` (VideoPose3D's ``qrot``,
    which needs no unit norm: the same polynomial)."""
    w, x, y, z = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


@functools.cache
def h36m_cameras() -> dict[str, tuple[H36MCamera, ...]]:
    """Subject -> its four cameras, from ``h36m_cameras.toml`` (VideoPose3D's camera order)."""
    table = tomllib.loads(resources.files(__package__).joinpath("h36m_cameras.toml").read_text(encoding="utf-8"))
    return {subject: tuple(_camera(intr, np.array(q), np.array(centre_mm) / 1000.0)
                           for intr, q, centre_mm in zip(table["cameras"], ext["orientation"], ext["translation_mm"]))
            for subject, ext in table["subjects"].items()}


def _camera(intr: dict, q: np.ndarray, centre: np.ndarray) -> H36MCamera:
    """A camera from its intrinsics table, orientation ``q`` (camera -> world) and centre (metres)."""
    R = quaternion_matrix(q).T  # VideoPose3D's world_to_camera: x_cam = qrot(q^-1, x - centre)
    return H36MCamera(intr["id"], R, -R @ centre, np.array(intr["focal_length_px"]), np.array(intr["center_px"]),
                      np.array(intr["radial_distortion"]), np.array(intr["tangential_distortion"]))


def project_h36m(points: np.ndarray, cam: H36MCamera) -> np.ndarray:
    """(..., 3) world points (metres, +z up) -> (..., 2) pixels through ``cam``.

    Human3.6M's camera model, as VideoPose3D's ``project_to_2d`` (there in normalised screen
    coordinates, here in pixels: the same numbers once ``image_coordinates`` undoes the
    normalisation): ``(x, y) = clip(X / Z, -1, 1)``, ``r2 = x^2 + y^2``,
    ``d = (x, y) (1 + k1 r2 + k2 r2^2 + k3 r2^3 + p1 x + p2 y) + (p1, p2) r2``, pixel
    ``= f d + c``.  Not ``posesynth.cameras.project``: its tangential terms are OpenCV's
    (``2 p1 x y + p2 (r2 + 2 x^2)``, ...), it has no k3, and it does not clip.
    """
    x_cam = points @ cam.R.T + cam.t
    xy = np.clip(x_cam[..., :2] / x_cam[..., 2:], -1.0, 1.0)
    r2 = (xy * xy).sum(-1, keepdims=True)
    k1, k2, k3 = cam.radial
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    tangential = (cam.tangential * xy).sum(-1, keepdims=True)
    return cam.focal * (xy * (radial + tangential) + cam.tangential * r2) + cam.centre


def to_h36m_world(points: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(B, J, 3) posesynth world points of store rows ``rows`` (B,) -> (B, J, 3) float64 in
    Human3.6M's world: each sample turned about the vertical by its heading (module docstring),
    then +y up -> +z up."""
    yaw = 2 * np.pi * np.modf(rows * _GOLDEN)[0]
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    x, y, z = (points[..., i].astype(np.float64) for i in range(3))
    return np.stack([c * x + s * z, s * x - c * z, y], axis=-1)


def export_h36m(group: zarr.Group, out: Path, options: ExportOptions) -> list[Path]:
    """``data_3d_h36m.npz`` and ``data_2d_h36m_<name>_<set2d>.npz`` in the folder ``out`` (module docstring)."""
    check_request(group, out, options, "h36m")
    if options.keypoint_set != "h36m17":
        raise ExportError(f"--keypoint-set {options.keypoint_set}: --format h36m builds Human3.6M's skeleton from "
                          "h36m17; choose the 2D set with --keypoint-set-2d")
    if options.noisy:
        raise ExportError("--noisy: --format h36m re-projects the 3D through Human3.6M's cameras; the store's noisy "
                          "2D belongs to its own cameras (use --format videopose3d)")
    path_3d = check_output(out / "data_3d_h36m.npz", options.overwrite)
    path_2d = check_output(out / f"data_2d_h36m_{options.name}_{options.set_2d}.npz", options.overwrite)
    rows = subject_rows(read_array(group[LABEL_PATH]), group.attrs.get("labels", []), options.test_fraction,
                        TRAIN_SUBJECTS, TEST_SUBJECTS)
    _write_3d(group, rows, path_3d, options.overwrite)
    _write_2d(group, rows, options, path_2d)
    return [path_3d, path_2d]


def _write_3d(group: zarr.Group, rows: Rows, path: Path, overwrite: bool) -> None:
    """The 3D file: the 32 joints in Human3.6M's world, store rows and the plain description."""
    world = keypoints_path("h36m17", "world")
    positions = empty(rows, (len(H36M_PARENTS), 3))
    for lo, chunk in view_chunks(group, [world], "h36m 3D"):
        points = to_h36m_world(chunk[world], lo + np.arange(len(chunk[world])))[:, H36M_FROM_17]
        for s, a, frames, src in placements(rows, lo, lo + len(points)):
            positions[s][a][frames] = points[src]
    names = group.attrs["keypoint_sets"]["h36m17"]["joint_names"]
    joint_names = [("" if j in H36M_KEPT else "copy_of_") + names[H36M_FROM_17[j]] for j in range(len(H36M_PARENTS))]
    save(path, overwrite, {
        "positions_3d": positions, "sample_index": rows, "joint_names": np.array(joint_names),
        "units": np.array("m"), "up_axis": np.array("+z"),
        "frame": np.array("Human3.6M world as VideoPose3D's data_3d_h36m.npz: metres, right-handed, +z up, floor at "
                          "z = 0; posesynth's world turned per sample and rotated +y up -> +z up"),
    })


def _write_2d(group: zarr.Group, rows: Rows, options: ExportOptions, path: Path) -> None:
    """The 2D file: the 2D set through each subject's four cameras, and VideoPose3D's metadata."""
    world = keypoints_path(options.set_2d, "world")
    cameras = h36m_cameras()
    views = [empty(rows, (group[world].shape[1], 2)) for _ in range(4)]
    for lo, chunk in view_chunks(group, [world], "h36m 2D"):
        points = to_h36m_world(chunk[world], lo + np.arange(len(chunk[world])))
        for s, a, frames, src in placements(rows, lo, lo + len(points)):
            for view, cam in zip(views, cameras[s]):
                view[s][a][frames] = project_h36m(points[src], cam)
    names = group.attrs["keypoint_sets"][options.set_2d]["joint_names"]
    save(path, options.overwrite, {
        "positions_2d": per_view(views), **described(options.set_2d, names),
        "metadata": keypoints_metadata(options.set_2d, names, keypoint_set_3d="h36m17")})
