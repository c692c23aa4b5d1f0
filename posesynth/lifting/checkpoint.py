"""A trained lifter: its network, its config and what it was trained on, in one file.

The file is a ``torch.save`` dict of tensors and plain values, read back with
``torch.load(..., weights_only=True)``.  A cGAN lifter records the identity of the body model
it poses through; loading it with another body model is an error.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from posesynth import __version__
from posesynth.body_model import BodyModel, load_body_model
from posesynth.config import check_types
from posesynth.errors import PosesynthError
from posesynth.keypoint_sets import KeypointSet
from posesynth.lifting.features import LIFTABLE_SETS, camera_coordinates, keypoint_set, lifter_features, root_weights
from posesynth.lifting.models import CGANLifter, MLPLifter
from posesynth.outputs import atomic_output
from posesynth.torch_files import load_tensors_file, require_keys

FORMAT = "posesynth-lifter"
FORMAT_VERSION = 1
MODELS = ("mlp", "cgan")


class LifterError(PosesynthError, ValueError):
    """A lifter file or request that cannot be used; the message says why."""


@dataclass(frozen=True)
class LifterConfig:
    """Everything that defines a lifter's training (``posesynth lift train --set key=value``)."""

    model: str = "mlp"  # "mlp" (SimpleBaseline) or "cgan"
    keypoint_set: str = "h36m17"
    noisy: bool = False  # train on the stores' detector-noise 2D instead of the clean 2D
    steps: int = 20000
    batch_size: int = 256
    lr: float = 1e-3
    lr_final: float = 1e-4  # exponential decay from lr to lr_final over the steps
    width: int = 1024
    blocks: int = 2
    dropout: float = 0.25
    seed: int = 0
    # cGAN only
    latent: int = 16
    hypotheses: int = 4  # per input and step: the reconstruction term takes the best of them
    adversarial: float = 0.01
    reconstruction: float = 1.0  # MPJPE in metres, best of the hypotheses plus half the z = 0 one's
    cycle: float = 1.0  # reprojection error of the (placed) 3D against the input, in feature units
    betas_prior: float = 1e-3  # squared norm of the predicted betas
    disc_width: int = 512
    lr_d: float = 2e-4

    def __post_init__(self) -> None:
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        check_types(dataclasses.asdict(self), defaults, "lifter setting ", LifterError)
        if self.model not in MODELS:
            raise LifterError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.keypoint_set not in LIFTABLE_SETS:
            raise LifterError(f"keypoint_set must be one of {LIFTABLE_SETS}, got {self.keypoint_set!r}")
        for name in ("steps", "batch_size", "width", "blocks", "hypotheses", "latent", "disc_width"):
            if getattr(self, name) < 1:
                raise LifterError(f"lifter setting {name} must be >= 1, got {getattr(self, name)}")
        for name in ("lr", "lr_final", "lr_d"):
            if getattr(self, name) <= 0:
                raise LifterError(f"lifter setting {name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise LifterError(f"lifter setting dropout must be in [0, 1), got {self.dropout}")

    @classmethod
    def with_overrides(cls, base: "LifterConfig", overrides: dict[str, Any]) -> "LifterConfig":
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise LifterError(f"unknown lifter setting(s) {unknown}; known: {', '.join(known)}")
        return dataclasses.replace(base, **overrides)


@dataclass
class Lifter:
    """A lifter ready to use: ``predict(pixels, K)`` -> root-relative camera-frame 3D (B, J, 3)."""

    model: nn.Module
    config: LifterConfig
    training: dict[str, Any] = field(default_factory=dict)  # data, steps done, final losses

    @property
    def kset(self) -> KeypointSet:
        return keypoint_set(self.config.keypoint_set)

    def features(self, pixels: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
        """(B, J, 2) pixels and (B, 3, 3) intrinsics -> (B, 2 J + 2)."""
        return lifter_features(camera_coordinates(pixels, K), root_weights(self.kset))

    @torch.no_grad()
    def predict(self, pixels: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
        """(B, J, 2), (B, 3, 3) -> (B, J, 3); the cGAN's z = 0 prediction."""
        return self.predict_features(self.features(pixels, K))

    @torch.no_grad()
    def predict_features(self, features: torch.Tensor) -> torch.Tensor:
        self.model.eval()
        if isinstance(self.model, CGANLifter):
            return self.model.mode(features)[2]
        return self.model(features)

    @torch.no_grad()
    def hypotheses(self, features: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, F) -> (B, k, J, 3): the cGAN's k hypotheses (0: z = 0)."""
        if not isinstance(self.model, CGANLifter):
            raise LifterError("only a cgan lifter gives several hypotheses")
        self.model.eval()
        return self.model.hypotheses(features, k, generator)

    @torch.no_grad()
    def smpl(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The cGAN's z = 0 SMPL parameters: rotations (B, 24, 3, 3) (0: camera frame), betas (B, K)."""
        if not isinstance(self.model, CGANLifter):
            raise LifterError("only a cgan lifter predicts SMPL parameters")
        self.model.eval()
        rotmats, betas, _ = self.model.mode(features)
        return rotmats, betas


def build_model(config: LifterConfig, body: BodyModel | None = None) -> nn.Module:
    kset = keypoint_set(config.keypoint_set)
    if config.model == "mlp":
        return MLPLifter(kset, config.width, config.blocks, config.dropout)
    return CGANLifter(kset, body or load_body_model(), config.latent, config.width, config.blocks, config.dropout)


def save_lifter(path: str | Path, lifter: Lifter, overwrite: bool = True) -> None:
    """Write atomically (``posesynth.outputs.atomic_output``); an existing file is replaced only
    with ``overwrite``."""
    body = lifter.model.body.identity if isinstance(lifter.model, CGANLifter) else None
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "posesynth_version": __version__,
               "config": dataclasses.asdict(lifter.config), "body_model": body, "training": lifter.training,
               "state": {k: v.detach().cpu() for k, v in lifter.model.state_dict().items()}}
    with atomic_output(path, overwrite) as tmp:
        torch.save(payload, tmp)


def load_lifter(path: str | Path, body: BodyModel | None = None) -> Lifter:
    """A saved lifter; a missing, corrupt or mismatched file raises LifterError."""
    path = Path(path)
    payload = load_tensors_file(path, LifterError, "lifter")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise LifterError(f"{path}: not a posesynth lifter (a GAN checkpoint? use it with sample/evaluate)")
    require_keys(payload, ("format_version", "config", "body_model", "training", "state"), path, LifterError,
                 "posesynth lifter")
    if payload["format_version"] > FORMAT_VERSION:
        raise LifterError(f"{path}: lifter format {payload['format_version']} is newer than this posesynth reads")
    try:
        config = LifterConfig(**payload["config"])
    except (TypeError, LifterError) as exc:
        raise LifterError(f"{path}: its config cannot be used ({exc})") from None
    if payload["body_model"] is not None:
        body = body or load_body_model()
        if body.identity != payload["body_model"]:
            raise LifterError(f"{path}: trained with body model {payload['body_model']}, got {body.identity}")
    model = build_model(config, body)
    try:
        model.load_state_dict(payload["state"])
    except RuntimeError as exc:
        raise LifterError(f"{path}: weights do not match the config ({str(exc).splitlines()[0]})") from None
    return Lifter(model.eval(), config, payload["training"])
