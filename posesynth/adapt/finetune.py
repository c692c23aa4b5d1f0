"""Generator fine-tuning against a 2D discriminator (AdaptPose/PoseDA's local adaptation).

A small MLP discriminator sees normalised 2D poses (root-centred, unit scale:
``frechet.normalised_2d``, (B, 2 J)): the target's, and the generator's poses through cameras of
the adapted distribution (``views``: generator -> 6D rotations -> forward kinematics on bodies of
the aligned betas prior -> keypoints -> cameras -> normalisation, differentiable).  One step
updates the discriminator (non-saturating loss, R1 on the target's 2D), then the generator:

- ``adversarial``: fool the 2D discriminator;
- ``anchor``: the mean squared distance (m^2) between the root-relative joints of the generator
  and of the original (frozen) generator on the same latents and bodies — it keeps the 3D of
  every latent near what the 3D GAN learnt, so the generator can reweight and bend poses, not
  invent bodies the 2D alone would accept;
- ``limits``: ``plausibility.limit_penalty`` against the checkpoint's joint limits (off for a
  checkpoint without them, such as checkpoints trained before they were recorded: ``uses_limits``);
- ``critic_3d``, only when the checkpoint's training state is given (``critic3d``): the 3D GAN's
  own discriminator on the generated rotations and joints, frozen.  A checkpoint alone holds no
  3D discriminator (only the EMA generator); then the anchor and the limits stand in for it.

No moving average is kept: the fine-tuned weights are the ones saved.  Every random draw comes
from one CPU generator (``rng``), so a run is deterministic under its seed on a given device.
Shapes: B a batch, J the target's keypoints, 24 SMPL joints.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from posesynth.adapt.frechet import normalised_2d
from posesynth.adapt.recipe import FinetuneSection
from posesynth.adapt.views import Bodies, pose_bodies, view_coords
from posesynth.body_model import BodyModel
from posesynth.cameras import CameraDistribution
from posesynth.gan.checkpoint import GanPoseSource
from posesynth.gan.networks import Discriminator, mlp
from posesynth.plausibility import limit_penalty
from posesynth.rotations import matrix_to_rot6d, rot6d_to_matrix

DISC_WIDTH = 256


@dataclass
class Batch:
    """A generated batch: rotations (B, 24, 3, 3), root-relative joints (B, 24, 3) and normalised 2D (B V, 2 J)."""

    rotmats: torch.Tensor
    joints: torch.Tensor
    features: torch.Tensor


class FineTuner:
    """The generator of ``source`` fine-tuned towards ``target`` (normalised camera coordinates
    (N, J, 2) of keypoint set ``layout``) through cameras of ``cameras``."""

    def __init__(self, source: GanPoseSource, target: torch.Tensor, layout: str, cameras: CameraDistribution,
                 body: BodyModel, settings: FinetuneSection, seed: int, device: torch.device,
                 critic: Discriminator | None = None) -> None:
        self.source, self.layout, self.cameras, self.settings = source, layout, cameras, settings
        self.device, self.body = device, body.to(device)
        torch.manual_seed(seed)
        self.original = source.generator.to(device).eval().requires_grad_(False)
        self.generator = copy.deepcopy(self.original).train().requires_grad_(True)
        self.discriminator = mlp([target.shape[1] * 2, DISC_WIDTH, DISC_WIDTH, 1]).to(device)
        betas = (settings.adam_beta1, settings.adam_beta2)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=settings.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=settings.lr_d, betas=betas)
        self.target = normalised_2d(target.to(device), layout).float()  # (N, 2 J)
        self.rng = torch.Generator().manual_seed(seed)
        self.any_label = self.original.num_labels
        self.step = 0
        self.uses_limits = settings.limits > 0 and source.joint_limits is not None
        self.critic = critic.to(device) if critic is not None and settings.critic_3d > 0 else None

    # ------------------------------------------------------------------ batches
    def _any(self, n: int) -> torch.Tensor:
        """(n,) the "any label" index."""
        return torch.full((n,), self.any_label, dtype=torch.int64, device=self.device)

    def _posed(self, generator: torch.nn.Module, z: torch.Tensor, betas: torch.Tensor) -> tuple[torch.Tensor, Bodies]:
        """``generator``'s rotations (B, 24, 3, 3) for latents ``z`` (B, Z), posed on ``betas`` (B, K)."""
        rotmats = rot6d_to_matrix(generator(z, self._any(len(z))))
        return rotmats, pose_bodies(rotmats, betas, self.body, self.layout)

    def _generated(self, z: torch.Tensor, betas: torch.Tensor, cameras: torch.Generator) -> Batch:
        rotmats, bodies = self._posed(self.generator, z, betas)
        features = normalised_2d(view_coords(bodies, self.cameras, cameras), self.layout)
        return Batch(rotmats, bodies.joints - bodies.joints[:, :1], features)

    def _draws(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Generator]:
        """Latents (n, Z) (around the source's latent bank when it has one; the bank's turns are
        not applied: the generator is tuned on its own poses), betas (n, K) and a camera
        generator, drawn from ``rng``."""
        bank = self.source.latent_bank
        z = (torch.randn(n, self.original.sizes.latent, generator=self.rng) if bank is None else
             bank.draw(n, self.rng)[0]).to(self.device)
        betas = self.source.betas_prior.sample(n, self.rng).to(self.device, self.body.dtype)
        seed = int(torch.randint(2 ** 62, (1,), generator=self.rng))
        return z, betas, torch.Generator().manual_seed(seed)

    def _real(self, n: int) -> torch.Tensor:
        rows = torch.randint(len(self.target), (n,), generator=self.rng).to(self.device)
        return self.target[rows]

    # ------------------------------------------------------------------ one step
    def train_step(self) -> dict[str, float]:
        """One discriminator and one generator update; the logged losses."""
        z, betas, cams = self._draws(self.settings.batch_size)
        fake = self._generated(z, betas, cams)
        logs = self._discriminator_step(self._real(len(fake.features)), fake.features.detach())
        loss, g_logs = self._generator_loss(fake, z, betas)
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        self.step += 1
        return logs | g_logs

    def _generator_loss(self, fake: Batch, z: torch.Tensor, betas: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The weighted generator terms (see the module doc) on a generated batch of latents ``z``
        and ``betas``; the loss (scalar) and the logged values."""
        s, d = self.settings, self.discriminator.requires_grad_(False)
        adversarial = F.softplus(-d(fake.features).squeeze(-1)).mean()
        d.requires_grad_(True)
        with torch.no_grad():
            _, anchor_bodies = self._posed(self.original, z, betas)
        anchor = (fake.joints - (anchor_bodies.joints - anchor_bodies.joints[:, :1])).pow(2).sum(-1).mean()
        limits = (limit_penalty(fake.rotmats, self.source.joint_limits).mean()
                  if self.uses_limits else torch.zeros((), device=self.device))
        loss = s.adversarial * adversarial + s.anchor * anchor + s.limits * limits
        logs = {"g_adv": adversarial.item(), "anchor_mm": 1000 * anchor.sqrt().item(), "limits": limits.item()}
        if self.critic is not None:
            logit, _ = self.critic(matrix_to_rot6d(fake.rotmats), fake.joints, self._any(len(z)))
            critic = F.softplus(-logit).mean()
            loss, logs["critic_3d"] = loss + s.critic_3d * critic, critic.item()
        return loss, logs

    def _discriminator_step(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
        """Non-saturating loss and R1 on ``real`` (B, 2 J) against ``fake`` (B, 2 J)."""
        real = real.detach().requires_grad_(self.settings.r1 > 0)
        real_logit = self.discriminator(real).squeeze(-1)
        fake_logit = self.discriminator(fake).squeeze(-1)
        loss = F.softplus(-real_logit).mean() + F.softplus(fake_logit).mean()
        if self.settings.r1 > 0:
            grad, = torch.autograd.grad(real_logit.sum(), real, create_graph=True)
            loss = loss + 0.5 * self.settings.r1 * grad.pow(2).sum(-1).mean()
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return {"d_loss": loss.item()}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "rng": self.rng.get_state(), "generator": self.generator.state_dict(),
                "discriminator": self.discriminator.state_dict(), "opt_g": self.opt_g.state_dict(),
                "opt_d": self.opt_d.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.rng.set_state(state["rng"])
        for name in ("generator", "discriminator", "opt_g", "opt_d"):
            getattr(self, name).load_state_dict(state[name])
