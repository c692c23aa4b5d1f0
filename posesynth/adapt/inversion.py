"""The target's 2D lifted through the generator: one latent per target pose (the cycle's 2D -> 3D -> 2D).

For each of the target's poses the generator's latent ``z`` and a camera rotation ``R`` are
fitted so that the generated pose, on a body of the aligned prior's mean, seen through ``R``
(orthographic: normalised 2D is root-centred and unit-scale, so position, distance and size drop
out), reprojects onto the target's normalised 2D.  The generator is the pose prior: what comes
back is the plausible 3D pose the generator makes that looks like the target's in 2D, so the
latents (``(N, Z)``) carry the target's distribution of poses into the generator, where the 2D
alone could not (a view can hide depth; the generator fills it with what people do).

Per pose the loss is the mean squared difference of normalised 2D, plus ``latent`` times how far
the mean squared latent exceeds 1 (keeps ``z`` within the shell where a standard normal's draws,
and so the generator's training, lie, without pulling it towards the mean pose at 0), the
squared distance (radians) of the camera's elevation outside ``elevation_deg`` when given, and
``limits`` times the joint limits' penalty (``plausibility.limit_penalty``, when the checkpoint
has limits) and, given a depth regressor (``adapt.cycle``, ``settings.cycle``), ``cycle`` times
the mean squared difference between the pose's depths as its camera sees them and the
regressor's readings of the target's 2D (which also decides the best start).  The elevation
bound is there because one view allows a fit mirrored in depth, seen from below instead of
above (the Necker reversal); measured on the cross-source folds, a
tenth of the poses went there with 430 mm of 3D error when unbounded.  A view and its mirror
through the body give nearly the same 2D, so each pose starts from ``starts`` cameras
around the body (azimuths evenly spaced, level), each with its own latent; after ``start_steps``
Adam steps the best start of each pose goes on for ``steps`` more.  With ``turns > 0`` that
second phase also turns each pose's body joints beyond what the generator gives (axis-angle
``turns`` (N, 23, 3), after each joint's own rotation, ``turns`` times their summed squares in
the loss): the target's poses that the generator comes near but cannot make (another source's
actions) are reached, held near the generator's by the weight and the joint limits.  With
``turn_steps > 0`` they are fitted after that phase instead, for that many steps, with the
cameras held where it left them: the turns then reach the pose in the view the generator's pose
found, rather than letting a view drift that any pose can be turned to fit.  With
``shared_turns > 0`` it also fits one set of joint turns (23, 3) shared by every pose (added to
each pose's own; ``shared_turns`` times their summed squares, per pose, in the loss): a rig's
convention for how its joints sit is the same in every pose, so across many poses and views the
2D shows it where one pose's cannot, as it shows the body.  With
``bodies``, the second phase also fits the body's proportions (``adapt.bodies``: each segment's
own beta, within the adult limits), one body shared by every pose: a bone's 2D length across many poses and views
tells its 3D length against the others (bundle adjustment), where one pose's 2D cannot.  Size
is not seen in normalised 2D, so the fitted body is then scaled (its stature beta) to a leg
length (``body_range.leg_length``): by default an average adult's, the body model's template's
(``settings.size``: the target's people are not the checkpoint's), or the prior mean's.  Hips,
knees and ankles sit at the same anatomical joints in every rig, while where a rig puts the
shoulders, neck and pelvis is a convention that the proportions carry (a rig with a longer
pelvis-to-neck is a larger skeleton, not a shorter person); girth stays the prior's.  Every
pose is fitted in each step (the body is shared); every draw comes from one seed, so the result
is deterministic on a device.

Shapes: N target poses, J keypoints of the target's set, Z the latent size, S starts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from posesynth.adapt.bodies import PROPORTION_BETAS, BodySpace
from posesynth.adapt.cycle import DepthRegressor, orthographic_depth
from posesynth.adapt.frechet import normalised_2d
from posesynth.adapt.recipe import InvertSection
from posesynth.adapt.viewpoint import rotation_angles
from posesynth.adapt.views import pose_bodies
from posesynth.body_model import BodyModel
from posesynth.body_prior import BetasPrior
from posesynth.body_range import WideBodyRange, leg_length
from posesynth.gan.checkpoint import GanPoseSource
from posesynth.gan.latents import turned
from posesynth.plausibility import limit_penalty
from posesynth.rotations import matrix_to_rot6d, rot6d_to_matrix
from posesynth.skeleton import NUM_JOINTS

# a camera in front of a body facing +z: image x along the body's left (+x), image y down (-y),
# looking along -z (OpenCV axes, as rows of R)
FRONT = torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])


@dataclass(frozen=True)
class Inversion:
    """The fitted latents (N, Z), each pose's reprojection error (N,) (the RMS distance of
    normalised 2D, unit-scale units), camera rotation (N, 3, 3) (rows: the camera's axes in the
    body's frame) and its elevation (N,) (degrees) and, when fitted, the body's betas (K,) and the
    poses' joint turns (N, 23, 3)."""

    latents: torch.Tensor
    error: torch.Tensor
    cameras: torch.Tensor
    betas: torch.Tensor | None
    turns: torch.Tensor | None  # (N, 23, 3) axis-angle, radians: each pose's joints beyond the generator
    shared_turns: torch.Tensor | None = None  # (23, 3) the part of ``turns`` shared by every pose

    @property
    def elevation_deg(self) -> torch.Tensor:
        """(N,) each pose's camera elevation, degrees."""
        return torch.rad2deg(rotation_angles(self.cameras)[:, 0])

    def summary(self) -> dict[str, float]:
        """The reprojection error's median and 90th percentile, the cameras' median elevation and,
        when fitted, the shared joint turns' mean and largest angle (degrees), for the adapted
        record."""
        q = torch.quantile(self.error.double(), torch.tensor([0.5, 0.9], dtype=torch.float64))
        summary = {"poses": len(self.error), "error_median": float(q[0]), "error_p90": float(q[1]),
                   "elevation_deg_median": float(self.elevation_deg.double().median())}
        if self.shared_turns is not None:
            angles = torch.rad2deg(self.shared_turns.double().norm(dim=-1))
            summary |= {"shared_turns_deg_mean": float(angles.mean()), "shared_turns_deg_max": float(angles.max())}
        return summary


def start_cameras(starts: int) -> torch.Tensor:
    """(S, 3, 3) level cameras at ``starts`` azimuths evenly spaced around the body."""
    angles = torch.arange(starts, dtype=torch.float64) * (2 * math.pi / starts)
    c, s = angles.cos(), angles.sin()
    zero, one = torch.zeros_like(angles), torch.ones_like(angles)
    turn = torch.stack([torch.stack([c, zero, s], -1), torch.stack([zero, one, zero], -1),
                        torch.stack([-s, zero, c], -1)], -2)  # (S, 3, 3) about +y
    return (FRONT.double() @ turn).float()


def elevation(r6: torch.Tensor) -> torch.Tensor:
    """(B, 6) camera rotations -> (B,) their elevation, radians (``viewpoint.rotation_angles``)."""
    return rotation_angles(rot6d_to_matrix(r6))[:, 0]


def outside(x: torch.Tensor, bounds: torch.Tensor) -> torch.Tensor:
    """How far each of ``x`` (B,) lies outside ``bounds`` (2,), 0 within."""
    return (bounds[0] - x).clamp_min(0.0) + (x - bounds[1]).clamp_min(0.0)


class Inverter:
    """Fits latents of ``source``'s generator to normalised 2D poses on one body, the mean of
    ``prior``; with ``settings.bodies`` that body's proportions (``adapt.bodies.BodySpace``'s
    betas, within its limits) are fitted too, shared by every pose."""

    def __init__(self, source: GanPoseSource, body: BodyModel, layout: str, prior: BetasPrior,
                 settings: InvertSection, device: torch.device,
                 elevation_deg: tuple[float, float] | None = None) -> None:
        self.elevation = None if elevation_deg is None else torch.deg2rad(torch.tensor(elevation_deg, device=device))
        self.generator = source.generator.to(device).eval().requires_grad_(False)
        self.limits = source.joint_limits if settings.limits > 0 else None
        self.body, self.layout, self.settings, self.device = body.to(device), layout, settings, device
        self.mean = prior.mean.to(device, body.dtype)
        space = BodySpace.for_body(prior, body) if settings.bodies else None
        self.bounds = None if space is None else (torch.as_tensor(space.lo).to(self.mean),
                                                  torch.as_tensor(space.hi).to(self.mean))
        self.proportions = self.mean[list(PROPORTION_BETAS)].clone()  # (S,) the fitted betas
        self.shared: torch.Tensor | None = None  # (23, 3) the joint turns shared by every pose, once fitted

    def total_turns(self, own: torch.Tensor | None, n: int) -> torch.Tensor | None:
        """(n, 23, 3) each pose's joint turns: its own (``own``, or none) plus the shared ones;
        None when neither is fitted."""
        if self.shared is None:
            return own
        return self.shared.expand(n, -1, -1) if own is None else own + self.shared

    def betas(self) -> torch.Tensor:
        """(K,) the body's betas: the prior's mean with the (bounded) fitted proportions."""
        betas = self.mean.clone()
        proportions = self.proportions if self.bounds is None else self.proportions.clamp(*self.bounds)
        betas[list(PROPORTION_BETAS)] = proportions
        return betas

    def body_betas(self) -> torch.Tensor:
        """(K,) float32 the fitted body, scaled to the leg length ``settings.size`` names: the body
        model's mean shape's or the prior mean's (see the module doc)."""
        wide = WideBodyRange.for_body(self.body)
        size = torch.zeros_like(self.mean) if self.settings.size == "average_adult" else self.mean
        legs = leg_length(self.body.rest_joints(size[None]))
        return wide.scaled_to(self.betas()[None].detach(), legs, leg_length)[0].float().cpu()

    def loss(self, z: torch.Tensor, r6: torch.Tensor, turns: torch.Tensor | None, target: torch.Tensor,
             depth: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per pose (B,): the weighted loss, the RMS reprojection error and the data term (the
        squared 2D error, plus ``cycle`` times the squared depth error), for latents ``z``
        (B, Z), cameras ``r6`` (B, 6), each pose's own joint turns ``turns`` (B, 23, 3) or None
        (the shared turns, when fitted, are added to them), normalised target 2D ``target``
        (B, 2 J) and the cycle regressor's depths ``depth`` (B, J) or None."""
        labels = torch.full((len(z),), self.generator.num_labels, dtype=torch.int64, device=self.device)
        rotmats = turned(rot6d_to_matrix(self.generator(z, labels)), self.total_turns(turns, len(z)))
        bodies = pose_bodies(rotmats, self.betas().expand(len(z), -1), self.body, self.layout)
        seen = (bodies.keypoints - bodies.joints[:, :1]) @ rot6d_to_matrix(r6).transpose(-1, -2)
        squared = (normalised_2d(seen[..., :2], self.layout) - target).pow(2).mean(-1)
        data = squared
        if depth is not None:
            data = data + self.settings.cycle * (orthographic_depth(seen, self.layout) - depth).pow(2).mean(-1)
        loss = data + self.settings.latent * (z.pow(2).mean(-1) - 1.0).clamp_min(0.0)
        if turns is not None:
            loss = loss + self.settings.turns * turns.pow(2).sum((-1, -2))
        if self.shared is not None:
            loss = loss + self.settings.shared_turns * self.shared.pow(2).sum()
        if self.limits is not None:
            loss = loss + self.settings.limits * limit_penalty(rotmats, self.limits)
        if self.elevation is not None:
            loss = loss + outside(elevation(r6), self.elevation).pow(2)
        return loss, squared.detach().sqrt(), data.detach()

    def fit(self, z: torch.Tensor, r6: torch.Tensor, target: torch.Tensor, depth: torch.Tensor | None, steps: int,
            progress: Callable[[int], None] | None, *, body: bool = False, turns: bool = False,
            shared: bool = False, cameras: bool = True) -> tuple[torch.Tensor | None, ...]:
        """``steps`` Adam steps on every pose at once from ``z`` (B, Z) and ``r6`` (B, 6) (the
        cameras held when not ``cameras``; the body's proportions fitted too with ``body``, each
        pose's joint turns from none with ``turns``, the shared joint turns from none with
        ``shared``) towards ``target`` (B, 2 J) and ``depth`` (B, J) or None; the fitted ``z``,
        ``r6``, turns (B, 23, 3) or None, the RMS 2D error (B,) and the data term (B,) (``loss``)."""
        z, r6 = z.clone().requires_grad_(True), r6.clone().requires_grad_(cameras)
        own = torch.zeros(len(z), NUM_JOINTS - 1, 3, device=self.device, requires_grad=True) if turns else None
        self.proportions.requires_grad_(body)
        params = [z] + ([r6] if cameras else []) + ([self.proportions] if body else []) + ([own] if turns else [])
        if shared:
            self.shared = torch.zeros(NUM_JOINTS - 1, 3, device=self.device, requires_grad=True)
            params.append(self.shared)
        opt = torch.optim.Adam(params, lr=self.settings.lr)
        for _ in range(steps):
            loss, _, _ = self.loss(z, r6, own, target, depth)
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()
            if progress:
                progress(1)
        self.proportions.requires_grad_(False)
        if self.shared is not None:
            self.shared = self.shared.detach()
        own = None if own is None else own.detach()
        with torch.no_grad():
            _, error, data = self.loss(z, r6, own, target, depth)
        return z.detach(), r6.detach(), own, error, data


def turns_after(settings: InvertSection) -> bool:
    """Whether the lifting fits each pose's turns in a phase of their own, the cameras held."""
    return settings.turns > 0 and settings.turn_steps > 0


def lifting_steps(settings: InvertSection) -> int:
    """The steps one lifting (``invert``) takes, for a progress bar."""
    return settings.start_steps + settings.steps + (settings.turn_steps if turns_after(settings) else 0)


def invert(source: GanPoseSource, coords: torch.Tensor, layout: str, prior: BetasPrior, body: BodyModel,
           settings: InvertSection, seed: int, device: torch.device,
           progress: Callable[[int], None] | None = None,
           elevation_deg: tuple[float, float] | None = None, regressor: DepthRegressor | None = None) -> Inversion:
    """Latents of ``source``'s generator for the first ``settings.poses`` of the target's
    normalised camera coordinates ``coords`` (N, J, 2) (a seeded shuffle picks them when there
    are more), on the body of ``prior``'s mean (its proportions fitted with ``settings.bodies``),
    each pose's camera held within ``elevation_deg`` (degrees) when given, its depths drawn
    towards ``regressor``'s readings (``settings.cycle``) when given; ``progress`` is called
    after each step with 1."""
    s, generator = settings, torch.Generator().manual_seed(seed)
    rows = torch.randperm(len(coords), generator=generator)[:s.poses]
    picked = torch.as_tensor(coords)[rows]
    target = normalised_2d(picked, layout).float().to(device)
    depth = None if regressor is None else regressor.read(picked.float().to(device))
    n, inverter = len(target), Inverter(source, body, layout, prior, s, device, elevation_deg)
    z = torch.randn(s.starts * n, source.generator.sizes.latent, generator=generator).to(device)
    r6 = matrix_to_rot6d(start_cameras(s.starts)).repeat_interleave(n, 0).to(device)  # (S N, 6)
    repeated = None if depth is None else depth.repeat(s.starts, 1)
    z, r6, _, _, data = inverter.fit(z, r6, target.repeat(s.starts, 1), repeated, s.start_steps, progress)
    best = data.reshape(s.starts, n).argmin(0) * n + torch.arange(n, device=device)
    z, r6, turns, error, _ = inverter.fit(z[best], r6[best], target, depth, s.steps, progress, body=s.bodies,
                                          turns=s.turns > 0 and not turns_after(s), shared=s.shared_turns > 0)
    if turns_after(s):  # the turns on their own, the cameras held
        z, r6, turns, error, _ = inverter.fit(z, r6, target, depth, s.turn_steps, progress, turns=True, cameras=False)
    turns = inverter.total_turns(turns, n)
    return Inversion(z.cpu(), error.cpu(), rot6d_to_matrix(r6).cpu(), inverter.body_betas() if s.bodies else None,
                     None if turns is None else turns.contiguous().cpu(),
                     None if inverter.shared is None else inverter.shared.cpu())
