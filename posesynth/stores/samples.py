"""The sample store's layout: every array's path, shape, dtype and axis names (``ARRAYS``).

``posesynth.sampling`` creates these arrays (``array_shapes``, ``dimension_names``); every
reader (``data``, ``info``, ``plots``, ``export``, ``render``, ``lifting``, the benchmarks) finds
them through ``smpl_path``, ``camera_path``, ``keypoints_path`` and ``LABEL_PATH``.
docs/sample_store.md describes the same arrays; tests/test_sample_store_layout.py holds the two
together.

Shapes: N samples, V views, J keypoints of a set, K betas (the body model's).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import zarr

from posesynth.stores.arrays import ArraySpec, Shapes

KIND = "samples"

SMPL_PARAMS = ("global_orient", "body_pose", "betas", "transl")
CAMERA_PARAMS = ("K", "R", "t", "distortion", "image_size")
KEYPOINT_ARRAYS = ("world", "camera", "pixels", "visible", "pixels_noisy")
NOISY = "pixels_noisy"  # the keypoint array written only when the recipe asks for detector noise
SET = "<set>"  # the keypoint set's name, in the path templates of ``ARRAYS``
LABEL_PATH = "label"

VISIBLE_IN_FRAME = 1  # bit 0 of keypoints/<set>/visible
VISIBLE_NOT_OCCLUDED = 2  # bit 1
VISIBLE = VISIBLE_IN_FRAME | VISIBLE_NOT_OCCLUDED  # 3: the usual mask
VISIBILITY = ("keypoints/<set>/visible: bit 0 = in frame, bit 1 = not self-occluded "
              "(capsule model of the body, posesynth.visibility); 3 = visible")  # the store's attribute

# The type of each group attribute (docs/sample_store.md), as readers rely on it: name -> type, or
# (type, type of each entry).  ``posesynth.stores.checked_arrays`` holds a store to it.
ATTRIBUTES = {"recipe": dict, "seed": int, "source": dict, "labels": (list, str), "keypoint_sets": (dict, dict),
              "skeleton": dict, "camera_convention": str, "visibility": str, "units": dict, "body_model": str,
              "shape_space": dict, "block_size": int, "shards_done": (list, int), "run": dict}


def _known(name: str, names: tuple[str, ...], what: str) -> str:
    if name not in names:
        raise KeyError(f"{name!r} is not a sample-store {what}; they are {', '.join(names)}")
    return name


def smpl_path(param: str) -> str:
    """The array of SMPL parameter ``param`` (``SMPL_PARAMS``): ``smpl/<param>``."""
    return "smpl/" + _known(param, SMPL_PARAMS, "SMPL parameter")


def camera_path(param: str) -> str:
    """The array of camera parameter ``param`` (``CAMERA_PARAMS``): ``camera/<param>``."""
    return "camera/" + _known(param, CAMERA_PARAMS, "camera parameter")


def keypoints_path(set_name: str, array: str) -> str:
    """The array ``array`` (``KEYPOINT_ARRAYS``) of keypoint set ``set_name``: ``keypoints/<set>/<array>``."""
    return f"keypoints/{set_name}/" + _known(array, KEYPOINT_ARRAYS, "keypoint array")


ARRAYS: tuple[ArraySpec, ...] = (
    ArraySpec(smpl_path("global_orient"), (3,), "float32", ("sample", "axis_angle")),
    ArraySpec(smpl_path("body_pose"), (69,), "float32", ("sample", "pose_param")),
    ArraySpec(smpl_path("betas"), ("K",), "float32", ("sample", "beta")),
    ArraySpec(smpl_path("transl"), (3,), "float32", ("sample", "xyz")),
    ArraySpec(LABEL_PATH, (), "int32", ("sample",)),
    ArraySpec(camera_path("K"), ("V", 3, 3), "float32", ("sample", "view", "matrix_row", "matrix_col")),
    ArraySpec(camera_path("R"), ("V", 3, 3), "float32", ("sample", "view", "matrix_row", "matrix_col")),
    ArraySpec(camera_path("t"), ("V", 3), "float32", ("sample", "view", "xyz")),
    ArraySpec(camera_path("distortion"), ("V", 4), "float32", ("sample", "view", "coefficient")),
    ArraySpec(camera_path("image_size"), ("V", 2), "int32", ("sample", "view", "width_height")),
    ArraySpec(keypoints_path(SET, "world"), ("J", 3), "float32", ("sample", "joint", "xyz")),
    ArraySpec(keypoints_path(SET, "camera"), ("V", "J", 3), "float32", ("sample", "view", "joint", "xyz")),
    ArraySpec(keypoints_path(SET, "pixels"), ("V", "J", 2), "float32", ("sample", "view", "joint", "uv")),
    ArraySpec(keypoints_path(SET, "visible"), ("V", "J"), "uint8", ("sample", "view", "joint")),
    ArraySpec(keypoints_path(SET, NOISY), ("V", "J", 2), "float32", ("sample", "view", "joint", "uv")),
)
_BY_PATH = {spec.path: spec for spec in ARRAYS}


def array_spec(path: str) -> ArraySpec:
    """The spec of the array at ``path`` (``keypoints/h36m17/pixels``: the ``keypoints/<set>/pixels`` one)."""
    parts = path.split("/")
    template = keypoints_path(SET, parts[2]) if len(parts) == 3 and parts[0] == "keypoints" else path
    return _BY_PATH[template]


def dimension_names(path: str) -> tuple[str, ...]:
    """The axis names of the array at ``path``, the sample axis first."""
    return array_spec(path).dims


def array_shapes(views: int, num_betas: int, sets: Mapping[str, int], noise: bool) -> Shapes:
    """Every array of a store with ``views`` views, ``num_betas`` betas and keypoint sets
    ``sets`` (name -> J; noisy 2D when ``noise``), in the order they are created: path ->
    (shape after the sample axis, dtype)."""
    shapes = {spec.path: (spec.tail({"V": views, "K": num_betas}), spec.dtype) for spec in ARRAYS
              if SET not in spec.path}
    for name, J in sets.items():
        for spec in ARRAYS:
            if SET in spec.path and (noise or not spec.path.endswith(NOISY)):
                shapes[spec.path.replace(SET, name)] = (spec.tail({"V": views, "J": J}), spec.dtype)
    return shapes


def num_views(group: zarr.Group) -> int:
    """V, the cameras per sample of the sample store ``group``."""
    return int(group[camera_path("K")].shape[1])


def keypoint_set_names(paths: Iterable[str]) -> list[str]:
    """The keypoint sets (sorted) that have arrays among a store's array ``paths``."""
    return sorted({p.split("/")[1] for p in paths if p.startswith("keypoints/")})
