"""The GAN training recipe: ``posesynth/recipes/gan_default.toml``'s sections as frozen dataclasses.

``load_train_recipe`` merges a user's recipe file and ``--set`` overrides over the shipped
``gan_default.toml``, which holds every value (the recipe behind the shipped checkpoint), so
``posesynth train`` without ``--recipe`` trains the shipped model.  Each field carries its rule
(``posesynth.config.ruled``); ``TrainRecipe.to_dict`` is what checkpoints and ``recipe.toml`` record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from posesynth.config import (
    AT_LEAST_ONE, FRACTION, NON_NEGATIVE, POSITIVE, Recipe, Section, load_recipe, read_recipe, ruled,
)
from posesynth.gan.networks import NetworkSizes
from posesynth.resources import packaged_path

DEFAULT_TRAIN_RECIPE = packaged_path("recipes", "gan_default.toml")


@dataclass(frozen=True)
class DataSection(Section):
    """``[data]``: which label to condition on, how to weigh the training poses."""

    NAME = "data"

    label_field: str  # the store's label field ("content", ...)
    balance: str  # posesynth.stores.training_poses.balance_weights's weighting of the poses
    label_dropout: float = ruled(FRACTION)  # share of steps trained with the "any" label


@dataclass(frozen=True)
class BetasSection(Section):
    """``[betas]``: the prior of the bodies poses are put on (``posesynth.body_prior``)."""

    NAME = "betas"

    prior: str  # "fitted" or "standard"
    num_betas: int = ruled(AT_LEAST_ONE)
    std: float = ruled(POSITIVE)
    clip: float = ruled(POSITIVE)  # in standard deviations


@dataclass(frozen=True)
class TrainSection(Section):
    """``[train]``: the optimisation (the only section a resumed run may change)."""

    NAME = "train"

    steps: int = ruled(AT_LEAST_ONE)
    batch_size: int = ruled(AT_LEAST_ONE)
    lr_g: float = ruled(POSITIVE)
    lr_d: float = ruled(POSITIVE)
    adam_beta1: float = ruled(FRACTION)
    adam_beta2: float = ruled(FRACTION)
    ema: float = ruled(FRACTION)  # decay of the generator's moving average
    seed: int
    log_every: int = ruled(AT_LEAST_ONE)
    eval_every: int = ruled(AT_LEAST_ONE)
    state_every: int = ruled(AT_LEAST_ONE)


@dataclass(frozen=True)
class LossSection(Section):
    """``[loss]``: the weights of the generator's terms and the R1 penalty (0 = off)."""

    NAME = "loss"

    adversarial: float = ruled(NON_NEGATIVE)
    r1: float = ruled(NON_NEGATIVE)
    r1_every: int = ruled(AT_LEAST_ONE)  # steps between R1 penalties
    feature_matching: float = ruled(NON_NEGATIVE)
    reconstruction: float = ruled(NON_NEGATIVE)
    kl: float = ruled(NON_NEGATIVE)
    cycle: float = ruled(NON_NEGATIVE)


@dataclass(frozen=True)
class EvalSection(Section):
    """``[eval]``: the size of the quick evaluation logged during training."""

    NAME = "eval"

    samples: int = ruled(AT_LEAST_ONE)  # generated poses
    val_poses: int = ruled(AT_LEAST_ONE)  # validation poses they must cover


@dataclass(frozen=True)
class TrainRecipe(Recipe):
    """A whole training recipe (``posesynth train --recipe``)."""

    data: DataSection
    model: NetworkSizes
    betas: BetasSection
    train: TrainSection
    loss: LossSection
    eval: EvalSection


def load_train_recipe(path: str | Path | None = None, overrides: Sequence[str] = ()) -> TrainRecipe:
    """gan_default.toml <- the recipe file at ``path`` <- ``section.key=value`` overrides."""
    return load_recipe(TrainRecipe, read_recipe(DEFAULT_TRAIN_RECIPE), str(DEFAULT_TRAIN_RECIPE), path, overrides)
