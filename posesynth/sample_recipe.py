"""Sampling recipes: what ``posesynth sample`` makes, as one typed, checked ``SampleRecipe``.

A sampling recipe (``posesynth/recipes/sample_default.toml``, which lists every value) has four
sections:

- ``[sample]`` (``SampleSection``): keypoint sets, whether to add detector noise, the label to
  condition on, the betas policy, and the store layout (rows per random-number block, per chunk
  and per shard);
- ``[camera]`` (``CameraSection``): ``preset = "h36m"`` (``posesynth.cameras.CAMERA_PRESETS`` or a
  TOML path), whose table gives every other key's value, plus any ``CameraDistribution`` key, which
  overrides the preset's value (``views`` is here);
- ``[noise]``: the ``noise.DetectorNoise`` parameters;
- ``[augment]``: the ``augment.Augmentation`` shares (mirrored, wide and tilted bodies, limb crossover, ...);
  a recipe without the table (a store written before it existed) has none (``augment = None``).

``resolve_sample_recipe`` starts from sample_default.toml with the camera preset's table under
its ``[camera]``, then merges the recipe file and the ``--set section.key=value`` overrides (values
read as TOML), and checks everything.  ``SampleRecipe.to_dict()`` is what the store records in its
``recipe`` attribute; ``validate_sample_recipe`` reads it back: running it again gives the same store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from posesynth.augment import NO_AUGMENTATION, Augmentation
from posesynth.cameras import CameraDistribution, load_camera_preset
from posesynth.config import (
    AT_LEAST_ONE, Recipe, RecipeError, Section, merge_recipe, parse_override, read_recipe, ruled,
)
from posesynth.keypoint_sets import keypoint_sets
from posesynth.noise import DetectorNoise
from posesynth.resources import packaged_path

DEFAULT_SAMPLE_RECIPE = packaged_path("recipes", "sample_default.toml")
BETAS_POLICIES = ("source", "prior")  # the pose source's betas, or the body model's prior


@dataclass(frozen=True)
class SampleSection(Section):
    """``[sample]``: what every sample holds, and the store's layout."""

    NAME = "sample"

    keypoint_sets: list[str]  # smpl24 first (added if missing), each set once
    noise: bool  # also write keypoints/<set>/pixels_noisy
    label: str  # a label of the source's vocabulary; "" = unconditioned
    betas: str  # one of BETAS_POLICIES
    block_size: int = ruled(AT_LEAST_ONE)  # rows per random-number block (changes the samples)
    chunk_size: int = ruled(AT_LEAST_ONE)  # rows per chunk, a multiple of block_size (layout only)
    shard_size: int = ruled(AT_LEAST_ONE)  # rows per shard, a multiple of chunk_size (layout only)

    def __post_init__(self) -> None:
        super().__post_init__()
        sets = ["smpl24"] + [n for n in dict.fromkeys(self.keypoint_sets) if n != "smpl24"]
        object.__setattr__(self, "keypoint_sets", sets)

    def check(self) -> None:
        try:
            keypoint_sets(self.keypoint_sets)
        except ValueError as exc:
            raise RecipeError(f"sample.keypoint_sets: {exc}") from None
        if self.betas not in BETAS_POLICIES:
            raise RecipeError(f"sample.betas must be one of {BETAS_POLICIES}, got {self.betas!r}")
        if self.chunk_size % self.block_size:
            raise RecipeError(f"sample.chunk_size ({self.chunk_size}) must be a multiple of "
                              f"sample.block_size ({self.block_size})")
        if self.shard_size % self.chunk_size:
            raise RecipeError(f"sample.shard_size ({self.shard_size}) must be a multiple of "
                              f"sample.chunk_size ({self.chunk_size})")


@dataclass(frozen=True)
class CameraSection(Section):
    """``[camera]``: the preset's name and every ``CameraDistribution`` key (checked by it); an
    unset ``focal_px``/``fov_deg`` or ``distortion`` is its "off" value, ``[]`` or ``{}``."""

    NAME = "camera"

    preset: str
    focal_px: Any
    fov_deg: Any
    distortion: Any
    image_size: Any
    distance_m: Any
    principal_jitter_px: Any
    azimuth_deg: Any
    elevation_deg: Any
    roll_deg: Any
    lookat_jitter_m: Any
    allow_truncation: Any
    views: Any

    def check(self) -> None:
        self.distribution()

    def distribution(self) -> CameraDistribution:
        """The ``CameraDistribution`` of every key but ``preset`` that is not "off"."""
        table = {k: v for k, v in asdict(self).items() if k != "preset" and v not in ([], {})}
        return CameraDistribution.from_dict(table)


@dataclass(frozen=True)
class SampleRecipe(Recipe):
    """A whole sampling recipe (``posesynth sample --recipe``)."""

    sample: SampleSection
    camera: CameraSection
    noise: DetectorNoise
    augment: Augmentation | None

    @property
    def augmentation(self) -> Augmentation:
        """The ``[augment]`` table, or no augmentation for a recipe without one."""
        return NO_AUGMENTATION if self.augment is None else self.augment


ADAPTED_PRESET = "adapted"  # camera.preset of a recipe whose cameras are an adapted checkpoint's


def resolve_sample_recipe(path: str | Path | None = None, overrides: Sequence[str] = (),
                          adapted: Mapping[str, Any] | None = None) -> SampleRecipe:
    """sample_default.toml (with the camera preset) <- the recipe file at ``path`` <- overrides,
    checked (RecipeError if not).  ``adapted``: what the pose source carries (an adapted
    checkpoint's, ``gan.checkpoint.adapted_sampling``): its ``camera`` table replaces the default
    preset's, with ``camera.preset = "adapted"``, unless the file or an override names a preset;
    its ``augment`` keys replace the shipped recipe's (the file and overrides still win)."""
    shipped = read_recipe(DEFAULT_SAMPLE_RECIPE)
    preset, named = _preset_name(shipped, path, overrides)
    if adapted is not None:
        shipped["augment"] = {**shipped["augment"], **adapted.get("augment", {})}
    if adapted is not None and not named:
        preset, table = ADAPTED_PRESET, dict(adapted["camera"])
    else:
        try:
            table = load_camera_preset(preset).to_dict()
        except ValueError as exc:
            raise RecipeError(str(exc)) from None
    shipped["camera"] = {"preset": preset, **_all_camera_keys(table),
                         **{k: v for k, v in shipped["camera"].items() if k != "preset"}}
    doc = merge_recipe(SampleRecipe, shipped, path, overrides)
    _one_focal_spec(doc["camera"], table)
    return SampleRecipe.from_dict(doc, str(DEFAULT_SAMPLE_RECIPE if path is None else path))


def _preset_name(shipped: Mapping[str, Any], path: str | Path | None, overrides: Sequence[str]) -> tuple[str, bool]:
    """The camera preset the last of the shipped recipe, the file and the ``camera.preset=`` overrides
    names, and whether the file or an override named it."""
    name, named = shipped["camera"]["preset"], False
    if path is not None:
        camera = read_recipe(path).get("camera", {})
        if isinstance(camera, Mapping) and "preset" in camera:
            name, named = camera["preset"], True
    for text in overrides:
        keys, value = parse_override(text)
        if keys == ["camera", "preset"]:
            name, named = value, True
    return str(name), named


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


def validate_sample_recipe(recipe: SampleRecipe | Mapping[str, Any]) -> SampleRecipe:
    """``recipe``, or the ``SampleRecipe`` of a recipe dict (a store's ``recipe`` attribute), checked;
    an ``[augment]`` key the dict lacks (a store written before the mechanism existed) is off."""
    if isinstance(recipe, SampleRecipe):
        return recipe
    if isinstance(recipe.get("augment"), Mapping):
        recipe = {**recipe, "augment": {**asdict(NO_AUGMENTATION), **recipe["augment"]}}
    return SampleRecipe.from_dict(recipe, "sampling recipe")
