"""The adaptation recipe: ``posesynth/recipes/adapt_default.toml``'s sections as frozen dataclasses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from posesynth.adapt.cameras import CAMERA_RANGES
from posesynth.adapt.search import SearchSizes
from posesynth.config import AT_LEAST_ONE, FRACTION, NON_NEGATIVE, POSITIVE, Recipe, RecipeError, Section, \
    load_recipe, read_recipe, ruled
from posesynth.resources import packaged_path

DEFAULT_ADAPT_RECIPE = packaged_path("recipes", "adapt_default.toml")
CAMERAS_BY = ("view", "frechet")
BODIES_BY = ("readings", "frechet")
SIZES = ("average_adult", "checkpoint")  # whose leg length the lifted body is scaled to


@dataclass(frozen=True)
class AlignSection(Section):
    """``[align]``: the global alignment of cameras and bodies (``posesynth.adapt.alignment``)."""

    NAME = "align"

    start: str  # a camera preset or a TOML file with a [camera] table
    camera_ranges: list[str]  # of posesynth.adapt.cameras.CAMERA_RANGES; [] keeps the start's cameras
    cameras_by: str  # "view" (posesynth.adapt.viewpoint) or "frechet" (with the bodies)
    bodies: bool  # fit the betas prior's proportions
    bodies_by: str  # with cameras_by = "view": "readings" (posesynth.adapt.viewpoint) or "frechet"
    view_steps: int = ruled(AT_LEAST_ONE)  # the view regressor's training steps
    poses: int = ruled(AT_LEAST_ONE)
    population: int = ruled(AT_LEAST_ONE)
    elites: int = ruled(AT_LEAST_ONE)
    iterations: int = ruled(AT_LEAST_ONE)

    def check(self) -> None:
        unknown = [name for name in self.camera_ranges if name not in CAMERA_RANGES]
        if unknown:
            raise RecipeError(f"align.camera_ranges: {unknown[0]!r} is not one of {', '.join(CAMERA_RANGES)}")
        if self.cameras_by not in CAMERAS_BY:
            raise RecipeError(f"align.cameras_by must be one of {', '.join(CAMERAS_BY)}, got {self.cameras_by!r}")
        if self.bodies_by not in BODIES_BY:
            raise RecipeError(f"align.bodies_by must be one of {', '.join(BODIES_BY)}, got {self.bodies_by!r}")
        if self.elites > self.population:
            raise RecipeError(f"align.elites ({self.elites}) must be at most align.population ({self.population})")

    @property
    def sizes(self) -> SearchSizes:
        return SearchSizes(self.population, self.elites, self.iterations)


@dataclass(frozen=True)
class FinetuneSection(Section):
    """``[finetune]``: the generator against the 2D discriminator (``posesynth.adapt.finetune``)."""

    NAME = "finetune"

    steps: int = ruled(NON_NEGATIVE)
    batch_size: int = ruled(AT_LEAST_ONE)
    lr_g: float = ruled(POSITIVE)
    lr_d: float = ruled(POSITIVE)
    adam_beta1: float = ruled(FRACTION)
    adam_beta2: float = ruled(FRACTION)
    r1: float = ruled(NON_NEGATIVE)
    adversarial: float = ruled(NON_NEGATIVE)
    anchor: float = ruled(NON_NEGATIVE)
    limits: float = ruled(NON_NEGATIVE)
    critic_3d: float = ruled(NON_NEGATIVE)  # the 3D GAN's discriminator, when its training state is given
    log_every: int = ruled(AT_LEAST_ONE)
    state_every: int = ruled(AT_LEAST_ONE)  # steps between saved states (resume)


@dataclass(frozen=True)
class InvertSection(Section):
    """``[invert]``: latents fitted to the target's poses (``posesynth.adapt.inversion``), which the
    adapted checkpoint draws its poses around."""

    NAME = "invert"

    poses: int = ruled(NON_NEGATIVE)  # target poses lifted (at most); 0: no inversion, latents from N(0, 1)
    starts: int = ruled(AT_LEAST_ONE)
    start_steps: int = ruled(NON_NEGATIVE)
    steps: int = ruled(NON_NEGATIVE)
    lr: float = ruled(POSITIVE)
    latent: float = ruled(NON_NEGATIVE)  # weight of the mean squared latent above 1
    limits: float = ruled(NON_NEGATIVE)  # weight of the joint limits' penalty (checkpoints with limits)
    turns: float = ruled(NON_NEGATIVE)  # weight of each pose's joint turns beyond the generator; 0: none fitted
    turn_steps: int = ruled(NON_NEGATIVE)  # > 0: the turns fitted after the second phase, cameras held; 0: with it
    shared_turns: float = ruled(NON_NEGATIVE)  # weight (per pose) of one set of joint turns shared by every pose; 0: none
    cycle: float = ruled(NON_NEGATIVE)  # weight of the cycle regressor's depths in a second lifting; 0: one lifting
    cycle_steps: int = ruled(AT_LEAST_ONE)  # the cycle regressor's training steps (adapt.cycle.BATCH poses each)
    bodies: bool  # fit one body's proportions, shared by every pose, with the latents
    size: str  # of SIZES: the fitted body scaled to an average adult's leg length or the checkpoint's people's
    camera_prior: bool  # hold each pose's camera near the elevations of a first camera alignment
    camera_margin_deg: float = ruled(NON_NEGATIVE)  # how far beyond that alignment's elevation range
    jitter: float = ruled(NON_NEGATIVE)  # the adapted checkpoint's latents: a fitted one + jitter * N(0, 1)

    def check(self) -> None:
        if self.size not in SIZES:
            raise RecipeError(f"invert.size must be one of {', '.join(SIZES)}, got {self.size!r}")


@dataclass(frozen=True)
class MeasureSection(Section):
    """``[measure]``: the size of the before/after Fréchet distances."""

    NAME = "measure"

    poses: int = ruled(AT_LEAST_ONE)


@dataclass(frozen=True)
class AdaptRecipe(Recipe):
    """A whole adaptation recipe (``posesynth adapt --recipe``)."""

    align: AlignSection
    finetune: FinetuneSection
    invert: InvertSection
    measure: MeasureSection


def load_adapt_recipe(path: str | Path | None = None, overrides: Sequence[str] = ()) -> AdaptRecipe:
    """adapt_default.toml <- the recipe file at ``path`` <- ``section.key=value`` overrides."""
    return load_recipe(AdaptRecipe, read_recipe(DEFAULT_ADAPT_RECIPE), str(DEFAULT_ADAPT_RECIPE), path, overrides)
