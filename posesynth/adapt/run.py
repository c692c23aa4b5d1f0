"""``posesynth adapt``: a GAN checkpoint fitted to a target's 2D, written as a checkpoint like any other.

1. read the target 2D (``target``) and the checkpoint; check the body model;
2. lift the target's poses through the generator (``inversion``: a latent per target pose whose
   generated pose reprojects onto it, and one body's proportions and one set of joint turns
   shared by all; each pose's camera held near the elevations of a first camera alignment on the
   checkpoint's own poses, ``invert.camera_prior``, against the mirror-in-depth fits a single view
   allows; then each pose's own joint turns, its camera held): the latents and turns become the
   checkpoint's latent bank (``gan.latents``), so that its samples follow the target's poses, and
   the body the mean of its betas prior; with ``invert.cycle``, a depth
   regressor (``cycle``) trained on those poses anchors a second lifting, which replaces the first;
3. the global alignment (``alignment``, from ``[align].start``), on the lifted poses and bodies:
   the camera ranges (and, with ``align.bodies``, the body proportions again) fitted to the
   target, the generator fixed;
4. fine-tune the generator against a 2D discriminator through the aligned cameras and bodies,
   from the bank's latents (``finetune``; off by default);
5. measure the Fréchet distance of the generator's normalised 2D to the target's
   (``[measure].poses`` poses, the same latent, body and camera draws each time): the original
   checkpoint with the start's cameras (``start``), the lifted poses and bodies with the aligned
   cameras (``aligned``), and the fine-tuned generator with them (``adapted``);
6. write the checkpoint (``gan.checkpoint.save_checkpoint``) with the aligned betas prior as its
   own, the latent bank, and an ``adapted`` record: the target files (paths, sha256, frames), the
   adapted ``[camera]`` table, the start's prior, the distances, the inversion's reprojection
   errors, the recipe, the seed and the source checkpoint.  A source's own latent bank is
   replaced by the new one (or dropped with ``invert.poses = 0``).

``sample``, ``render`` and the rest load it as any checkpoint (and so draw poses around its
bank and bodies from its prior); ``sample`` and ``render`` draw cameras from its adapted table
unless the sampling recipe or ``--set`` names a camera preset, and sample without the
augmentations of ``ADAPTED_AUGMENT`` unless the recipe or ``--set`` turns them on
(``sample_recipe.resolve_sample_recipe``'s ``adapted``).  Resumable: ``<out>.state`` keeps the
alignment and the fine-tuner's state (``adapt.state``); ``resume=True`` finishes the run (the
lifting, a few minutes, is redone: it is deterministic).
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from posesynth.adapt.alignment import (
    Alignment, AlignmentFit, AlignmentObjective, AlignmentSpace, ReadingObjective, fit_alignment, fit_by_view,
)
from posesynth.adapt.critic3d import load_critic
from posesynth.adapt.cycle import train_depth_regressor
from posesynth.adapt.errors import AdaptError
from posesynth.adapt.finetune import FineTuner
from posesynth.adapt.inversion import Inversion, invert, lifting_steps
from posesynth.adapt.recipe import AdaptRecipe, load_adapt_recipe
from posesynth.adapt.state import read_state, run_key, saved_fit, state_path, write_state
from posesynth.adapt.target import Target2D, read_target
from posesynth.adapt.viewpoint import train_view_regressor
from posesynth.augment import POOL_AUGMENTATIONS
from posesynth.body_model import BodyModel, load_body_model
from posesynth.body_prior import BetasPrior
from posesynth.cameras import CameraDistribution, load_camera_preset
from posesynth.gan.checkpoint import GanPoseSource, load_checkpoint, read_checkpoint_file, save_checkpoint
from posesynth.gan.latents import LatentBank
from posesynth.outputs import check_output
from posesynth.run_record import run_record
from posesynth.sampling.generate import check_body_model


# The [augment] an adapted checkpoint samples with unless a recipe says otherwise: the
# augmentations that reach beyond the pool (other bodies, tilted bodies, swapped limbs, mirror
# images, turned joints) reach beyond the target too, once its bodies and poses are known
# (measured: docs/adapt.md; mirror and mutation were made default after that measurement and are
# kept off so that it still holds).
ADAPTED_AUGMENT = dict.fromkeys(POOL_AUGMENTATIONS, 0.0)


@dataclass(frozen=True)
class AdaptResult:
    out: Path
    target_poses: int
    alignment: Alignment
    frechet_2d: dict[str, float]  # start, aligned, adapted
    inversion: dict[str, float] | None  # Inversion.summary(), None without inversion
    steps: int
    seconds: float


def sub_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for one stream of draws (``align``, ``finetune``, ``measure``) of a run."""
    return int.from_bytes(hashlib.sha256(f"posesynth.adapt:{seed}:{stream}".encode()).digest()[:8], "little") >> 1


def objective(source: GanPoseSource, n: int, seed: int, stream: str, body: BodyModel, target: Target2D,
              device: torch.device) -> AlignmentObjective:
    """The alignment objective on the first ``n`` poses of ``source``'s draws for ``stream`` of
    run ``seed`` (and as many standard-normal body draws after them; its cameras from the
    ``stream + " cameras"`` stream)."""
    generator = torch.Generator().manual_seed(sub_seed(seed, stream))
    with torch.no_grad():
        rotmats = source.sample(n, generator, device=device).rotmats
    normal = torch.randn(n, len(source.betas_prior.mean), generator=generator)
    return AlignmentObjective(rotmats, normal, body, target.layout, target.coords, sub_seed(seed, f"{stream} cameras"))


def with_alignment(source: GanPoseSource, generator: torch.nn.Module | None = None,
                   betas_prior: BetasPrior | None = None, latent_bank: LatentBank | None = None) -> GanPoseSource:
    """``source`` drawing from ``generator``, bodies of ``betas_prior`` and latents of
    ``latent_bank`` (standard normal ones when None) instead of its own."""
    other = copy.copy(source)
    other.generator = (generator or source.generator).eval()
    other.betas_prior = betas_prior or source.betas_prior
    other.latent_bank = latent_bank
    return other


def alignment_space(source: GanPoseSource, recipe: AdaptRecipe, body: BodyModel) -> AlignmentSpace:
    """What the recipe's ``[align]`` searches, from its start cameras and the source's betas prior."""
    a = recipe.align
    try:
        cameras = load_camera_preset(a.start)
    except ValueError as exc:
        raise AdaptError(f"align.start: {exc}") from None
    return AlignmentSpace.make(Alignment(cameras, source.betas_prior), a.camera_ranges, a.bodies, body)


def align(source: GanPoseSource, space: AlignmentSpace, target: Target2D, recipe: AdaptRecipe, seed: int,
          body: BodyModel, device: torch.device, log: Callable[[str], None] | None) -> AlignmentFit:
    """Step 3 (and the camera prior's first fit): the global alignment over ``space`` fitted to
    the target."""
    a = recipe.align
    fitting = objective(source, a.poses, seed, "align", body, target, device)
    if a.cameras_by == "frechet" or not space.camera_keys:
        return fit_alignment(fitting, space, a.sizes, seed, log)
    regressor = train_view_regressor(fitting.rotmats, body, target.layout, space.start.cameras, a.view_steps,
                                     sub_seed(seed, "view regressor"))
    readings = ReadingObjective(fitting, regressor, target.coords)
    return fit_by_view(readings, fitting, space, a.sizes, seed, log, a.bodies_by)


def finetune(tuner: FineTuner, steps: int, log_every: int, state_every: int, save: Callable[[FineTuner], None],
             progress: bool) -> torch.nn.Module:
    """Step 4: ``tuner`` trained to ``steps`` (from its own step: a resumed one goes on), ``save``
    called every ``state_every`` steps; the fine-tuned generator."""
    bar = tqdm(total=steps, initial=tuner.step, desc="fine-tuning", unit="step", disable=not progress)
    while tuner.step < steps:
        logs = tuner.train_step()
        bar.update()
        if tuner.step % log_every == 0:
            bar.set_postfix({k: f"{v:.3g}" for k, v in logs.items()})
        if tuner.step % state_every == 0 and tuner.step < steps:
            save(tuner)
    bar.close()
    return tuner.generator.eval().requires_grad_(False)


def tuned_generator(source: GanPoseSource, target: Target2D, fit: AlignmentFit, recipe: AdaptRecipe, seed: int,
                    body: BodyModel, device: torch.device, state: dict[str, Any] | None,
                    save: Callable[[FineTuner], None], progress: bool,
                    log: Callable[[str], None] | None, critic: torch.nn.Module | None = None) -> torch.nn.Module:
    """The generator fine-tuned by the recipe through the aligned cameras and bodies (the
    source's own when ``finetune.steps = 0``), from the saved ``state``'s fine-tuner when it has one."""
    s = recipe.finetune
    if s.steps == 0:
        return source.generator
    aligned = with_alignment(source, betas_prior=fit.alignment.betas_prior, latent_bank=source.latent_bank)
    tuner = FineTuner(aligned, torch.as_tensor(target.coords), target.layout, fit.alignment.cameras, body, s,
                      sub_seed(seed, "finetune"), device, critic)
    if state is not None and state["tuner"] is not None:
        tuner.load_state_dict(state["tuner"])
        if log:
            log(f"resumed fine-tuning at step {tuner.step}")
    if log and not tuner.uses_limits and s.limits > 0:
        log(f"{source.path} has no joint limits: fine-tuning without the limits term")
    return finetune(tuner, s.steps, s.log_every, s.state_every, save, progress)


def camera_prior(start: GanPoseSource, space: AlignmentSpace, target: Target2D, recipe: AdaptRecipe, seed: int,
                 body: BodyModel, device: torch.device,
                 log: Callable[[str], None] | None) -> tuple[float, float] | None:
    """The elevation range (degrees) the lifting's cameras are held to (``invert.camera_prior``):
    the cameras aligned on the checkpoint's own poses, widened by ``invert.camera_margin_deg``;
    None when it is off, the lifting is, or the elevation is not fitted."""
    s = recipe.invert
    if not s.camera_prior or s.poses == 0 or "elevation_deg" not in space.camera_keys:
        return None
    fit = align(start, replace(space, bodies=None), target, recipe, seed, body, device, log)
    lo, hi = fit.alignment.cameras.elevation_deg
    held = lo - s.camera_margin_deg, hi + s.camera_margin_deg
    if log:
        log(f"invert: cameras held to elevation_deg [{held[0]:.3g}, {held[1]:.3g}]")
    return held


def lift_target(source: GanPoseSource, target: Target2D, recipe: AdaptRecipe, seed: int, body: BodyModel,
                cameras: CameraDistribution, device: torch.device, progress: bool,
                elevation_deg: tuple[float, float] | None) -> tuple[GanPoseSource, Inversion | None]:
    """Step 2: ``source`` drawing around latents of its generator fitted to the target's poses
    (their cameras within ``elevation_deg`` when given), on bodies around the fitted body
    (``invert.bodies``; else its prior's mean), and the inversion; ``source`` without a bank and
    None when ``invert.poses = 0``.  With ``invert.cycle``, the target is lifted twice: the
    second time towards the depths of a regressor (``cycle``) trained on the first lifting's
    poses through ``cameras`` with their elevation held to ``elevation_deg``."""
    s = recipe.invert
    if s.poses == 0:
        return with_alignment(source), None
    rounds = 2 if s.cycle > 0 else 1
    total = rounds * lifting_steps(s) + (s.cycle_steps if s.cycle > 0 else 0)
    bar = tqdm(total=total, desc="lifting the target", unit="step", disable=not progress)
    args = (source, torch.as_tensor(target.coords), target.layout, source.betas_prior, body, s,
            sub_seed(seed, "invert"), device, bar.update, elevation_deg)
    inversion = invert(*args)
    lifted = lifted_source(source, inversion, s.jitter)
    if s.cycle > 0:
        seen_by = cameras if elevation_deg is None else replace(cameras, elevation_deg=elevation_deg)
        regressor = train_depth_regressor(lifted, body, target.layout, seen_by, s.cycle_steps,
                                          sub_seed(seed, "cycle"), device, bar.update)
        inversion = invert(*args, regressor)
        lifted = lifted_source(source, inversion, s.jitter)
    bar.close()
    return lifted, inversion


def lifted_source(source: GanPoseSource, inversion: Inversion, jitter: float) -> GanPoseSource:
    """``source`` drawing around the latents (and turns) of ``inversion`` with ``jitter``, on
    bodies around its fitted body (its own prior's when it fitted none)."""
    prior = source.betas_prior
    if inversion.betas is not None:
        prior = BetasPrior(inversion.betas.to(prior.mean), prior.std, prior.clip)
    return with_alignment(source, betas_prior=prior, latent_bank=LatentBank(inversion.latents, jitter, inversion.turns))


def measure(source: GanPoseSource, alignment: Alignment, target: Target2D, recipe: AdaptRecipe, seed: int,
            body: BodyModel, device: torch.device) -> float:
    """The Fréchet distance of ``source``'s normalised 2D with ``alignment`` to the target's."""
    return objective(source, recipe.measure.poses, seed, "measure", body, target, device)(alignment)


def adapt(checkpoint: str | Path, target_2d: str | Path, out: str | Path, recipe: AdaptRecipe | None = None,
          seed: int = 0, device: torch.device | str = "cpu", normalised: bool = False,
          body_model: str | Path | None = None, overwrite: bool = False, resume: bool = False,
          training_state: str | Path | None = None, progress: bool = False,
          log: Callable[[str], None] | None = None) -> AdaptResult:
    """Adapt the GAN checkpoint at ``checkpoint`` to the target 2D at ``target_2d`` (a keypoint
    file or a folder) and write the adapted checkpoint to ``out`` (see the module doc); ``resume``
    finishes the interrupted run whose state is beside ``out`` (``adapt.state``); ``training_state``:
    the checkpoint's ``state.pt``, whose 3D discriminator then joins the fine-tuning (``critic3d``)."""
    begin = time.perf_counter()
    recipe, out, device = recipe or load_adapt_recipe(), check_output(out, overwrite), torch.device(device)
    target = read_target(target_2d, normalised)
    source, body = load_checkpoint(checkpoint, device), load_body_model(body_model)
    check_body_model(source, body)
    start = with_alignment(source)  # the checkpoint's poses, without a bank of its own
    start_space = alignment_space(start, recipe, body)  # checked before any work
    critic = None if training_state is None else load_critic(training_state, source)
    critic_file = None if training_state is None else str(training_state)
    body = body.to(device)
    key, state_file = run_key(source.sha256, target.record(), recipe.to_dict(), [seed, critic_file]), state_path(out)
    state = read_state(state_file, key, resume)
    elevation_deg = camera_prior(start, start_space, target, recipe, seed, body, device, log)
    lifted, inversion = lift_target(start, target, recipe, seed, body, start_space.start.cameras, device, progress,
                                    elevation_deg)
    space = alignment_space(lifted, recipe, body)
    fit = saved_fit(state) if state is not None else align(lifted, space, target, recipe, seed, body, device, log)
    write_state(state_file, key, fit, None if state is None else state["tuner"])
    generator = tuned_generator(lifted, target, fit, recipe, seed, body, device, state,
                                lambda tuner: write_state(state_file, key, fit, tuner.state_dict()), progress, log,
                                critic)
    tuned = with_alignment(lifted, generator, fit.alignment.betas_prior, lifted.latent_bank)
    start_alignment = Alignment(space.start.cameras, source.betas_prior)
    distances = {"start": measure(start, start_alignment, target, recipe, seed, body, device),
                 "aligned": measure(lifted, fit.alignment, target, recipe, seed, body, device),
                 "adapted": measure(tuned, fit.alignment, target, recipe, seed, body, device)}
    record = {"target": target.record(), "camera": fit.alignment.cameras.to_dict(), "augment": dict(ADAPTED_AUGMENT),
              "camera_start": recipe.align.start,
              "betas_prior_start": source.betas_prior.to_dict(), "frechet_2d": distances,
              "align_search": list(fit.history), "inversion": None if inversion is None else inversion.summary(),
              "recipe": recipe.to_dict(), "seed": seed,
              "training_state": critic_file,
              "source": {"path": str(checkpoint), "sha256": source.sha256}, "run": run_record(device)}
    write_adapted(tuned, out, record, overwrite)
    state_file.unlink(missing_ok=True)
    return AdaptResult(out, len(target), fit.alignment, distances, record["inversion"], recipe.finetune.steps,
                       time.perf_counter() - begin)


def write_adapted(tuned: GanPoseSource, out: Path, record: dict[str, Any], overwrite: bool) -> None:
    """The checkpoint of ``tuned`` (the source with the fine-tuned generator, the aligned betas
    prior and the latent bank) with the ``adapted`` record, at ``out``."""
    p = read_checkpoint_file(tuned.path)
    save_checkpoint(out, tuned.generator, p["recipe"], tuned.label_field, tuned.label_names, tuned.body_model,
                    p["step"], tuned.training_files, tuned.betas_prior, tuned.joint_limits, p.get("run"),
                    adapted=record, overwrite=overwrite, latent_bank=tuned.latent_bank)


def format_result(result: AdaptResult) -> str:
    """What ``posesynth adapt`` prints at the end."""
    d, c = result.frechet_2d, result.alignment.cameras
    focal = f"focal_px {_range(c.focal_px)}" if c.focal_px is not None else f"fov_deg {_range(c.fov_deg)}"
    return "\n".join([
        f"2D Fréchet distance to the target ({result.target_poses:,} poses): start {d['start']:.4g}, "
        f"aligned cameras and bodies {d['aligned']:.4g}, and generator {d['adapted']:.4g}",
        f"cameras: elevation_deg {_range(c.elevation_deg)}, roll_deg {_range(c.roll_deg)}, "
        f"distance_m {_range(c.distance_m)}, {focal}",
        f"bodies: betas prior mean {_betas(result.alignment.betas_prior)}",
        *_lifted(result.inversion),
        f"wrote {result.out} ({result.steps} fine-tuning steps, {result.seconds:.0f} s)"])


def _lifted(inversion: dict[str, float] | None) -> list[str]:
    if inversion is None:
        return []
    return [f"latent bank: {inversion['poses']:,} target poses lifted through the generator, reprojection error "
            f"(normalised 2D, RMS) median {inversion['error_median']:.3g}, "
            f"90th percentile {inversion['error_p90']:.3g}"]


def _betas(prior: BetasPrior) -> str:
    return "[" + ", ".join(f"{v:.2g}" for v in prior.mean.tolist()) + "]"


def _range(r: tuple[float, float]) -> str:
    return f"[{r[0]:.3g}, {r[1]:.3g}]"
