"""Sampling recipes: what ``posesynth sample`` makes, as one validated, fully resolved dict.

A sampling recipe (``posesynth/recipes/sample_default.toml``) has four sections:

- ``[sample]``: keypoint sets, whether to add detector noise, the label to condition on, the
  betas policy, and the store layout (rows per random-number block, per chunk and per shard);
- ``[camera]``: ``preset = "h36m"`` (``posesynth.cameras.CAMERA_PRESETS`` or a TOML path) plus
  any ``CameraDistribution`` key, which overrides the preset's value (``views`` is here);
- ``[noise]``: the ``DetectorNoise`` parameters;
- ``[augment]``: the ``augment.Augmentation`` shares (wide bodies, tilted bodies, limb crossover);
  a recipe without the table (a store written before it existed) has no augmentation.

``resolve_sample_recipe`` starts from the defaults, takes the preset's camera as the camera's
defaults, then applies the file and the ``--set section.key=value`` overrides (values read as
TOML), and validates everything.  The result is what the store records in its ``recipe``
attribute: running it again gives the same store.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from posesynth.augment import Augmentation
from posesynth.cameras import CameraDistribution, load_camera_preset
from posesynth.config import RecipeError, parse_override, read_recipe, resolve_recipe
from posesynth.keypoint_sets import keypoint_sets
from posesynth.noise import DetectorNoise
from posesynth.resources import packaged_path

DEFAULT_SAMPLE_RECIPE = packaged_path("recipes", "sample_default.toml")
BETAS_POLICIES = ("source", "prior")  # the pose source's betas, or the body model's prior
DEFAULT_PRESET = "h36m"

SAMPLE_DEFAULTS: dict[str, Any] = {
    "keypoint_sets": ["smpl24", "h36m17", "coco17"],
    "noise": True,  # write keypoints/<set>/pixels_noisy
    "label": "",  # a label of the source's vocabulary; "" = unconditioned
    "betas": "source",
    "block_size": 4096,  # rows per random-number block (changes the samples)
    "chunk_size": 4096,  # rows per chunk, a multiple of block_size (layout only)
    "shard_size": 65536,  # rows per shard, a multiple of chunk_size (layout only)
}
# The default store's augmentation (as in posesynth/recipes/sample_default.toml); a recipe that has no
# [augment] table at all, as stores written before it existed, means none (``Augmentation()``).
AUGMENT_DEFAULTS: dict[str, Any] = {"wide_bodies": 0.5, "tilt": 0.2, "tilt_deg": [0.0, 180.0], "crossover": 0.3,
                                    "temperature": 1.0, "hardness": 0.0, "hardness_lifter": ""}


def resolve_sample_recipe(path: str | Path | None = DEFAULT_SAMPLE_RECIPE,
                          overrides: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """Defaults <- camera preset <- recipe file <- overrides, validated (RecipeError if not)."""
    preset = _preset_name(path, overrides)
    try:
        camera = load_camera_preset(preset).to_dict()
    except ValueError as exc:
        raise RecipeError(str(exc)) from None
    defaults = {"sample": SAMPLE_DEFAULTS, "camera": {"preset": preset, **_all_camera_keys(camera)},
                "noise": DetectorNoise().to_dict(), "augment": dict(AUGMENT_DEFAULTS)}
    recipe = resolve_recipe(defaults, path, overrides)
    _one_focal_spec(recipe["camera"], camera)
    return validate_sample_recipe(recipe)


def _preset_name(path: str | Path | None, overrides: Sequence[str]) -> str:
    """The camera preset the file or the last ``camera.preset=`` override names."""
    name = DEFAULT_PRESET
    if path is not None:
        doc = read_recipe(path)
        camera = doc.get("camera", {})
        if isinstance(camera, Mapping):
            name = camera.get("preset", name)
    for text in overrides:
        keys, value = parse_override(text)
        if keys == ["camera", "preset"]:
            name = value
    return str(name)


def _all_camera_keys(camera: dict[str, Any]) -> dict[str, Any]:
    """The preset's table with every ``CameraDistribution`` key present, so any may be overridden
    (an absent focal_px/fov_deg or distortion is written as its "off" value: an empty list/table;
    setting the other of focal_px/fov_deg replaces the preset's, see ``_one_focal_spec``)."""
    return {"focal_px": [], "fov_deg": [], "distortion": {}, **camera}


def _one_focal_spec(camera: dict[str, Any], preset: Mapping[str, Any]) -> None:
    """Setting ``fov_deg`` over a preset with ``focal_px`` (or the reverse) replaces it."""
    for mine, other in (("fov_deg", "focal_px"), ("focal_px", "fov_deg")):
        if camera[mine] and mine not in preset and camera[other] == preset.get(other):
            camera[other] = []


def camera_distribution(recipe: Mapping[str, Any]) -> CameraDistribution:
    """The recipe's ``CameraDistribution`` (its ``[camera]`` table without ``preset``)."""
    table = {k: v for k, v in recipe["camera"].items() if k != "preset" and v not in ([], {})}
    return CameraDistribution.from_dict(table)


def detector_noise(recipe: Mapping[str, Any]) -> DetectorNoise:
    return DetectorNoise.from_dict(recipe["noise"])


def augmentation(recipe: Mapping[str, Any]) -> Augmentation:
    """The recipe's ``Augmentation`` (none for a recipe without an ``[augment]`` table)."""
    return Augmentation.from_dict(recipe.get("augment", {}))


def validate_sample_recipe(recipe: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A checked deep copy of a resolved recipe, with ``smpl24`` first among the keypoint sets."""
    recipe = copy.deepcopy(dict(recipe))
    missing = {"sample", "camera", "noise"} - set(recipe)
    if missing:
        raise RecipeError(f"sampling recipe: missing section(s) {sorted(missing)}")
    s = recipe["sample"] = {**SAMPLE_DEFAULTS, **recipe["sample"]}
    unknown = set(s) - set(SAMPLE_DEFAULTS)
    if unknown:
        raise RecipeError(f"sampling recipe: unknown key(s) sample.{', sample.'.join(sorted(unknown))}")
    names = s["keypoint_sets"]
    if isinstance(names, str) or not isinstance(names, list):
        raise RecipeError(f"sample.keypoint_sets must be a list of names, got {names!r}")
    s["keypoint_sets"] = ["smpl24"] + [n for n in dict.fromkeys(names) if n != "smpl24"]
    try:
        keypoint_sets(s["keypoint_sets"])
        camera_distribution(recipe)
        detector_noise(recipe)
        augmentation(recipe)
    except ValueError as exc:
        raise RecipeError(f"sampling recipe: {exc}") from None
    _check_sample(s)
    return recipe


def _check_sample(s: dict[str, Any]) -> None:
    if not isinstance(s["noise"], bool):
        raise RecipeError(f"sample.noise must be true or false, got {s['noise']!r}")
    if not isinstance(s["label"], str):
        raise RecipeError(f"sample.label must be a label name (\"\" for none), got {s['label']!r}")
    if s["betas"] not in BETAS_POLICIES:
        raise RecipeError(f"sample.betas must be one of {BETAS_POLICIES}, got {s['betas']!r}")
    for key in ("block_size", "chunk_size", "shard_size"):
        if isinstance(s[key], bool) or not isinstance(s[key], int) or s[key] < 1:
            raise RecipeError(f"sample.{key} must be a positive integer, got {s[key]!r}")
    if s["chunk_size"] % s["block_size"]:
        raise RecipeError(f"sample.chunk_size ({s['chunk_size']}) must be a multiple of "
                          f"sample.block_size ({s['block_size']})")
    if s["shard_size"] % s["chunk_size"]:
        raise RecipeError(f"sample.shard_size ({s['shard_size']}) must be a multiple of "
                          f"sample.chunk_size ({s['chunk_size']})")
