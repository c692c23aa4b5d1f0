"""GAN checkpoints: one file with everything needed to sample, loaded safely.

A checkpoint is a ``torch.save`` dict of tensors and plain values only, read back
with ``torch.load(..., weights_only=True)`` (no pickled code).  It holds the EMA
generator's weights, the resolved recipe, the label vocabulary, the mean pose the
generator is built around, the betas prior, the joint limits of the training poses (the
plausibility filter of tempered sampling), the body model's identity, the posesynth
version and the training run's record (``run``: versions, device, command line;
``posesynth.run_record``), and for a checkpoint made by ``posesynth adapt`` what it was adapted
to (``adapted``: the target, the adapted camera table, the 2D distances; ``posesynth.adapt.run``)
with the latents fitted to its poses (``latent_bank``: ``posesynth.gan.latents``; format 2, 3 with turns).
``load_checkpoint`` returns a ``GanPoseSource`` that ``sample`` draws poses from.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import torch

from posesynth import __version__
from posesynth.augment import POOL_AUGMENTATIONS
from posesynth.errors import PosesynthError
from posesynth.gan.latents import LatentBank, turned
from posesynth.gan.networks import Generator
from posesynth.gan.recipe import TrainRecipe
from posesynth.outputs import atomic_output
from posesynth.body_prior import BetasPrior
from posesynth.plausibility import JointLimits, implausible, turned_within_limits
from posesynth.pose_source import PoseBatch
from posesynth.resources import packaged_path
from posesynth.rotations import rot6d_to_matrix
from posesynth.torch_files import load_tensors_file

FORMAT = "posesynth-gan"
FORMAT_VERSION = 3  # 2: a latent bank; 3: its poses' turns (1: neither; what is written when there is no bank)
DEFAULT_CHECKPOINT = packaged_path("assets", "checkpoints", "default.pt")


class CheckpointError(PosesynthError, ValueError):
    """A checkpoint that cannot be used; the message names the file and says why."""


def save_checkpoint(path: str | Path, generator: Generator, recipe: dict, label_field: str,
                    label_names: tuple[str, ...], body_model: str, step: int,
                    training_files: tuple[str, ...] = (), betas_prior: BetasPrior | None = None,
                    joint_limits: JointLimits | None = None, run: dict[str, Any] | None = None,
                    adapted: dict[str, Any] | None = None, overwrite: bool = True,
                    latent_bank: LatentBank | None = None) -> None:
    """Write the sampling checkpoint atomically (a temporary file, then a rename).
    ``training_files`` names the mocap files it was trained on, so that evaluations can
    refuse a validation split the generator has seen; ``run``: the training run's record
    (``posesynth.run_record``); ``adapted``: what ``adapt`` adapted it to (plain values);
    ``latent_bank``: the latents its draws start from (format 2, or 3 when the bank holds turns;
    without it, format 1, which every posesynth reads)."""
    path = Path(path)
    payload = {
        "format": FORMAT,
        "format_version": 1 if latent_bank is None else latent_bank.format_version,
        "posesynth_version": __version__,
        "recipe": recipe,
        "label_field": label_field,
        "label_names": list(label_names),
        "body_model": body_model,
        "step": step,
        "training_files": list(training_files),
        "betas_prior": None if betas_prior is None else betas_prior.to_dict(),
        "joint_limits": None if joint_limits is None else joint_limits.to_dict(),
        "run": run,
        **({} if adapted is None else {"adapted": adapted}),
        **({} if latent_bank is None else {"latent_bank": latent_bank.to_dict()}),
        "generator": {k: v.detach().cpu() for k, v in generator.state_dict().items()},
    }
    with atomic_output(path, overwrite) as tmp:
        torch.save(payload, tmp)


def read_checkpoint_file(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict, or a CheckpointError that says what is wrong with the file."""
    path = Path(path)
    payload = load_tensors_file(path, CheckpointError, "posesynth checkpoint")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a posesynth GAN checkpoint")
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {payload['format_version']} is newer than this "
                              f"posesynth ({__version__}) reads ({FORMAT_VERSION}); upgrade posesynth")
    return payload


MAX_REDRAWS = 20


class GanPoseSource:
    """Draws poses from a trained generator (``posesynth.pose_source.PoseSource``, with its
    optional ``label_field``, ``training_files``, ``body_model`` and ``sha256``).

    ``temperature`` scales the latents (``tempered``): above 1, poses further from the training
    modes.  A checkpoint with a latent bank (``posesynth.gan.latents``) draws its "any label"
    latents around the bank's.  Tempered draws that fail the plausibility checks against the training poses' joint
    limits (``posesynth.plausibility``) are redrawn; a checkpoint without limits cannot be tempered.
    """

    temperature: float = 1.0

    def __init__(self, generator: Generator, payload: dict[str, Any], path: Path, recipe: TrainRecipe) -> None:
        self.generator = generator.eval()
        self.recipe = recipe
        self.label_field: str = payload["label_field"]
        self._labels = tuple(payload["label_names"])
        self.body_model: str = payload["body_model"]
        self.training_files: tuple[str, ...] = tuple(payload.get("training_files", ()))
        prior = self.recipe.betas
        self.betas_prior = (BetasPrior.from_dict(payload["betas_prior"]) if payload.get("betas_prior") else
                            BetasPrior.standard(prior.num_betas, prior.std, prior.clip))
        limits = payload.get("joint_limits")
        self.joint_limits = JointLimits.from_dict(limits) if limits else None
        self.adapted: dict[str, Any] | None = payload.get("adapted")  # posesynth adapt's record
        bank = payload.get("latent_bank")
        try:
            self.latent_bank = None if bank is None else LatentBank.from_dict(bank, generator.sizes.latent)
        except ValueError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
        self.path = path
        self.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()

    def tempered(self, temperature: float) -> GanPoseSource:
        """This source drawing latents ``temperature`` times wider (the same weights, shared)."""
        if temperature != 1.0 and self.joint_limits is None:
            raise CheckpointError(f"{self.path}: has no joint limits to filter tempered poses with; "
                                  f"retrain it with this posesynth to sample at temperature {temperature}")
        tempered = copy.copy(self)
        tempered.temperature = float(temperature)
        return tempered

    @property
    def label_names(self) -> tuple[str, ...]:
        return self._labels

    @property
    def identity(self) -> str:
        return f"{self.path.name}:{self.sha256[:16]}"

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator, label: int | None = None,
               device: torch.device | str = "cpu") -> PoseBatch:
        """Latents (redrawn for implausible tempered poses), then betas, drawn on the CPU from
        ``generator``; poses (B, 24, 3, 3)."""
        index = len(self._labels) if label is None else label
        self.generator.to(device)
        rotmats = self._poses(n, index, generator, device)
        if self.temperature != 1.0:
            for _ in range(MAX_REDRAWS):
                bad = torch.nonzero(implausible(rotmats, self.joint_limits)["any"]).squeeze(1)
                if not len(bad):
                    break
                rotmats[bad] = self._poses(len(bad), index, generator, device)
        betas = self.betas_prior.sample(n, generator)
        out_labels = torch.full((n,), -1 if label is None else label, dtype=torch.int64)
        return PoseBatch(rotmats, betas.to(device), out_labels.to(device))

    def _poses(self, n: int, index: int, generator: torch.Generator, device) -> torch.Tensor:
        if self.latent_bank is not None and index == len(self._labels):
            z, turns = self.latent_bank.draw(n, generator, self.temperature)
        else:
            z, turns = self.temperature * torch.randn(n, self.generator.sizes.latent, generator=generator), None
        labels = torch.full((n,), index, dtype=torch.int64, device=device)
        poses = rot6d_to_matrix(self.generator(z.to(device), labels))
        if turns is None or self.joint_limits is None:
            return turned(poses, turns)
        # A fitted pose's turns, on a pose jittered away from it, could take joints out of range.
        return turned_within_limits(poses, turned(poses, turns), self.joint_limits)


def adapted_sampling(source: Any) -> dict[str, Any] | None:
    """What an adapted checkpoint (a ``GanPoseSource`` or the path of a ``.pt``; ``posesynth
    adapt``) samples with by default: ``{"camera": its adapted [camera] table, "augment": its
    [augment] defaults}`` (``sample_recipe.resolve_sample_recipe``'s ``adapted``); None for any
    other pose source.  A pool augmentation the record lacks (one added after the checkpoint was
    written, which it was therefore not sampled with) is off."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.suffix != ".pt" or not path.is_file():
            return None
        record = read_checkpoint_file(path).get("adapted")
    else:
        record = getattr(source, "adapted", None)
    if record is None:
        return None
    return {"camera": record["camera"],
            "augment": {**dict.fromkeys(POOL_AUGMENTATIONS, 0.0), **record.get("augment", {})}}


def load_checkpoint(path: str | Path = DEFAULT_CHECKPOINT, device: torch.device | str = "cpu") -> GanPoseSource:
    """Load a sampling checkpoint; mismatched or corrupt files raise CheckpointError."""
    path = Path(path)
    payload = read_checkpoint_file(path)
    try:
        state = payload["generator"]
        recipe = TrainRecipe.from_dict(payload["recipe"], f"{path}: recipe")
        generator = Generator(recipe.model, len(payload["label_names"]), state["mean_pose6d"])
        generator.load_state_dict(state)
    except (KeyError, RuntimeError, TypeError) as exc:
        raise CheckpointError(f"{path}: the generator weights do not match its recipe "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    return GanPoseSource(generator.to(device), payload, path, recipe)
