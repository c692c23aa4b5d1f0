"""``posesynth train``: fit the pose GAN to a training store.

One step updates the discriminator (non-saturating loss with an R1 penalty on real
inputs) and then the generator (non-saturating loss plus the recipe's other terms):

- ``adversarial``: fool the discriminator.
- ``reconstruction``: an encoder maps real poses to latents that the generator must
  turn back into the same joints (a VAE-style term with a ``kl`` weight towards the
  latent prior).  It ties every real mode to some latent, which is what coverage of
  held-out poses needs, and keeps the adversarial game stable.
- ``feature_matching``: match the mean discriminator features of real and generated
  batches (a perceptual term, Salimans et al. 2016).
- ``cycle``: project generated joints to 2D under a random orthographic view, lift
  them back with a lifter trained on real poses, and ask for the same 3D.

Body shape is augmented: real and generated poses are both posed on bodies with
betas drawn from the betas prior (``[betas]``: by default fitted to the training
subjects' bodies and widened, ``body_prior.fit_betas_prior``), so the model learns
poses, not the pool's few bodies; the checkpoint keeps the prior for sampling.
Sampling uses an exponential moving average of the generator.  The run directory
holds ``recipe.toml`` (resolved), ``state.pt`` (everything needed to resume),
``checkpoint.pt`` (what ``sample`` loads), ``metrics.jsonl`` and ``curves.png``.

Shapes: B poses of a batch (``train.batch_size``), Z latent dimensions (``model.latent``), 24 SMPL
joints; rotations are (B, 24, 6) in 6D or (B, 24, 3, 3), joints (B, 24, 3) in metres and
root-relative, labels (B,) int64 (the last index: "any label").
"""

from __future__ import annotations

import copy
import json
import math
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from posesynth.body_model import BodyModel, load_body_model
from posesynth.config import RecipeError
from posesynth.errors import MissingExtraError
from posesynth.gan.checkpoint import CheckpointError, save_checkpoint
from posesynth.gan.networks import Discriminator, Encoder, Generator, Lifter
from posesynth.body_prior import fit_betas_prior
from posesynth.stores.training_poses import PoseData, load_training_poses
from posesynth.gan.recipe import TrainRecipe, load_train_recipe
from posesynth.plausibility import JointLimits
from posesynth.kinematics import forward_kinematics, rotation_about_y
from posesynth.outputs import atomic_output, check_folder
from posesynth.rotations import matrix_to_rot6d, rot6d_to_matrix
from posesynth.run_record import run_record
from posesynth.torch_files import load_tensors_file


@dataclass
class Models:
    generator: Generator
    ema: Generator
    discriminator: Discriminator
    encoder: Encoder
    lifter: Lifter
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer

    def state_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name).state_dict() for name in
                ("generator", "ema", "discriminator", "encoder", "lifter", "opt_g", "opt_d")}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            getattr(self, name).load_state_dict(value)


def build_models(recipe: TrainRecipe, data: PoseData) -> Models:
    sizes, t = recipe.model, recipe.train
    mean6d = matrix_to_rot6d(data.rotmats[:: max(1, len(data) // 20000)].mean(0).unsqueeze(0)).squeeze(0)
    mean6d = matrix_to_rot6d(rot6d_to_matrix(mean6d))  # nearest proper rotations
    gen = Generator(sizes, len(data.label_names), mean6d)
    disc = Discriminator(sizes, len(data.label_names))
    enc = Encoder(sizes, len(data.label_names))
    lifter = Lifter()
    betas = (t.adam_beta1, t.adam_beta2)
    opt_g = torch.optim.Adam([*gen.parameters(), *enc.parameters(), *lifter.parameters()], lr=t.lr_g, betas=betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=t.lr_d, betas=betas)
    return Models(gen, copy.deepcopy(gen).eval().requires_grad_(False), disc, enc, lifter, opt_g, opt_d)


class Trainer:
    """One training run; ``run()`` trains to the recipe's step count, resuming if it can."""

    def __init__(self, recipe: TrainRecipe, data_path: str | Path, out: str | Path, body: BodyModel | None = None,
                 device: torch.device | str = "cpu") -> None:
        self.recipe = recipe
        self.out = Path(out)
        self.device = torch.device(device)
        self.run_record = run_record(self.device)
        self.data = load_training_poses(data_path, recipe.data.label_field, "train", recipe.data.balance)
        self.val = load_training_poses(data_path, recipe.data.label_field, "val", "frame")
        b = recipe.betas
        self.betas_prior = fit_betas_prior(data_path, b.prior, b.num_betas, b.std, b.clip)
        self.joint_limits = JointLimits.from_poses(self.data.rotmats)
        self.body = body or load_body_model()
        template, dirs = self.body.joint_shape_basis()
        self.template, self.joint_dirs = template.float().to(self.device), dirs.float().to(self.device)
        torch.manual_seed(recipe.train.seed)
        self.models = build_models(recipe, self.data)
        for name in ("generator", "ema", "discriminator", "encoder", "lifter"):
            getattr(self.models, name).to(self.device)
        self.rng = torch.Generator().manual_seed(recipe.train.seed)
        self.step = 0
        self.rot6d = self.data.rot6d.float().to(self.device)
        self.rotmats = self.data.rotmats.float().to(self.device)
        self.any_label = len(self.data.label_names)

    # ------------------------------------------------------------------ batches
    def _randn(self, *shape: int) -> torch.Tensor:
        """N(0, 1) of ``shape``, drawn on the CPU from the run's generator, on the device."""
        return torch.randn(*shape, generator=self.rng).to(self.device)

    def _rest_joints(self, n: int) -> torch.Tensor:
        """Rest joints (n, 24, 3) of bodies with betas from the prior."""
        betas = self.betas_prior.sample(n, self.rng).to(self.device)
        return self.template + torch.einsum("jck,nk->njc", self.joint_dirs, betas)

    def _real_batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``n`` training poses drawn by their balance weights: 6D (n, 24, 6), rotations
        (n, 24, 3, 3) and labels (n,), each dropped to "any" with ``data.label_dropout``."""
        idx = torch.multinomial(self.data.weights, n, replacement=True, generator=self.rng).to(self.device)
        labels = self.data.labels.to(self.device)[idx]
        drop = torch.rand(n, generator=self.rng).to(self.device) < self.recipe.data.label_dropout
        return self.rot6d[idx], self.rotmats[idx], torch.where(drop, self.any_label, labels)

    @staticmethod
    def _joints(rotmats: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
        """Root-relative joints (B, 24, 3) of rotations (B, 24, 3, 3) on rest joints (B, 24, 3)."""
        _, joints = forward_kinematics(rotmats, rest)
        return joints - joints[:, :1]

    # ------------------------------------------------------------------ one step
    def train_step(self) -> dict[str, float]:
        """One discriminator and one generator update on a batch; the logged losses."""
        m, B = self.models, self.recipe.train.batch_size
        real6d, real_rot, labels = self._real_batch(B)
        rest = self._rest_joints(B)
        real_joints = self._joints(real_rot, rest)
        z = self._randn(B, m.generator.sizes.latent)
        fake_rot = rot6d_to_matrix(m.generator(z, labels))
        fake6d = matrix_to_rot6d(fake_rot)
        fake_joints = self._joints(fake_rot, rest)
        logs = self._discriminator_step(real6d, real_joints, fake6d.detach(), fake_joints.detach(), labels)
        logs.update(self._generator_step(real6d, real_joints, fake6d, fake_joints, labels, rest))
        self._update_ema()
        self.step += 1
        return logs

    def _discriminator_step(self, real6d, real_joints, fake6d, fake_joints, labels) -> dict[str, float]:
        """Non-saturating loss (+ R1 on real inputs every ``loss.r1_every`` steps) on 6D rotations
        (B, 24, 6), joints (B, 24, 3) and labels (B,)."""
        m, loss_w = self.models, self.recipe.loss
        penalise = loss_w.r1 > 0 and self.step % loss_w.r1_every == 0
        real6d = real6d.detach().requires_grad_(penalise)
        real_joints = real_joints.detach().requires_grad_(penalise)
        real_logit, _ = m.discriminator(real6d, real_joints, labels)
        fake_logit, _ = m.discriminator(fake6d, fake_joints, labels)
        loss = F.softplus(-real_logit).mean() + F.softplus(fake_logit).mean()
        r1 = torch.zeros((), device=self.device)
        if penalise:
            grads = torch.autograd.grad(real_logit.sum(), [real6d, real_joints], create_graph=True)
            r1 = sum(g.pow(2).reshape(len(g), -1).sum(-1) for g in grads).mean()
            loss = loss + 0.5 * loss_w.r1 * loss_w.r1_every * r1
        m.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        m.opt_d.step()
        return {"d_loss": loss.item(), "d_real": real_logit.mean().item(), "d_fake": fake_logit.mean().item()}

    def _generator_step(self, real6d, real_joints, fake6d, fake_joints, labels, rest) -> dict[str, float]:
        """The recipe's weighted generator terms on the batch (shapes as in ``_discriminator_step``;
        ``rest``: the batch's rest joints (B, 24, 3))."""
        m, loss_w = self.models, self.recipe.loss
        m.discriminator.requires_grad_(False)
        fake_logit, fake_feat = m.discriminator(fake6d, fake_joints, labels)
        logs: dict[str, float] = {}
        loss = loss_w.adversarial * F.softplus(-fake_logit).mean()
        if loss_w.feature_matching > 0:
            _, real_feat = m.discriminator(real6d, real_joints, labels)
            fm = (real_feat.mean(0) - fake_feat.mean(0)).pow(2).mean()
            loss = loss + loss_w.feature_matching * fm
            logs["feature_matching"] = fm.item()
        m.discriminator.requires_grad_(True)
        if loss_w.reconstruction > 0:
            recon, kl = self._reconstruction(real6d, real_joints, labels, rest)
            loss = loss + loss_w.reconstruction * recon + loss_w.kl * kl
            logs.update(reconstruction_mm=1000 * recon.sqrt().item(), kl=kl.item())
        if loss_w.cycle > 0:
            lift_loss, cycle = self._cycle(real_joints, fake_joints)
            loss = loss + lift_loss + loss_w.cycle * cycle
            logs.update(lifter=lift_loss.item(), cycle=cycle.item())
        m.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        m.opt_g.step()
        logs["g_adv"] = F.softplus(-fake_logit).mean().item()
        return logs

    def _reconstruction(self, real6d, real_joints, labels, rest) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean squared joint error (m^2) of real poses (B, 24, 6) encoded and generated back on
        ``rest`` (B, 24, 3), and the latents' KL divergence from N(0, 1); both scalars."""
        m = self.models
        mean, logvar = m.encoder(real6d, labels)
        z = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
        rec_joints = self._joints(rot6d_to_matrix(m.generator(z, labels)), rest)
        recon = (rec_joints - real_joints).pow(2).sum(-1).mean()
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1).mean()
        return recon, kl

    def _cycle(self, real_joints, fake_joints) -> tuple[torch.Tensor, torch.Tensor]:
        """Lifter loss on real joints (B, 24, 3), and the cycle loss of generated ones (lifter
        frozen), both seen under one random turn about +y per pose; both scalars (m^2)."""
        m = self.models
        view = rotation_about_y(self._randn(len(real_joints)) * math.pi)
        real_view, fake_view = real_joints @ view.transpose(-1, -2), fake_joints @ view.transpose(-1, -2)
        lift_loss = (m.lifter(real_view[..., :2].detach()) - real_view.detach()).pow(2).sum(-1).mean()
        m.lifter.requires_grad_(False)
        cycle = (m.lifter(fake_view[..., :2]) - fake_view).pow(2).sum(-1).mean()
        m.lifter.requires_grad_(True)
        return lift_loss, cycle

    @torch.no_grad()
    def _update_ema(self) -> None:
        decay = self.recipe.train.ema if self.step > 100 else 0.0
        for e, g in zip(self.models.ema.parameters(), self.models.generator.parameters()):
            e.lerp_(g, 1.0 - decay)

    # ------------------------------------------------------------------ files
    def save_state(self) -> None:
        state = {"step": self.step, "rng": self.rng.get_state(), "torch_rng": torch.get_rng_state(),
                 "models": self.models.state_dict()}
        with atomic_output(self.out / "state.pt") as tmp:
            torch.save(state, tmp)
        save_checkpoint(self.out / "checkpoint.pt", self.models.ema, self.recipe.to_dict(), self.data.label_field,
                        self.data.label_names, self.body.identity, self.step, self.data.files, self.betas_prior,
                        self.joint_limits, self.run_record)

    def try_resume(self) -> bool:
        path = self.out / "state.pt"
        if not path.is_file():
            return False
        state = load_tensors_file(path, CheckpointError, "training state (delete it to start over)")
        self.models.load_state_dict(state["models"])
        self.rng.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        self.step = int(state["step"])
        return True

    def log(self, record: dict[str, Any]) -> None:
        with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    # ------------------------------------------------------------------ loop
    def run(self, progress: bool = True) -> None:
        t = self.recipe.train
        self.out.mkdir(parents=True, exist_ok=True)
        resumed = self.try_resume()
        bar = tqdm(total=t.steps, initial=self.step, desc="training", unit="step", disable=not progress)
        if resumed:
            bar.write(f"resumed from {self.out / 'state.pt'} at step {self.step}")
        start = time.perf_counter()
        while self.step < t.steps:
            logs = self.train_step()
            bar.update()
            if self.step % t.log_every == 0 or self.step == t.steps:
                bar.set_postfix({k: f"{v:.3g}" for k, v in logs.items() if k in ("d_loss", "g_adv", "reconstruction_mm")})
                self.log({"step": self.step, "seconds": round(time.perf_counter() - start, 2), **logs})
            if self.step % t.eval_every == 0 or self.step == t.steps:
                self.log({"step": self.step, "eval": self.quick_eval()})
            if self.step % t.state_every == 0 or self.step == t.steps:
                self.save_state()
        bar.close()
        from posesynth.plots import plot_training_curves

        try:
            plot_training_curves(self.out / "metrics.jsonl", self.out / "curves.png")
        except MissingExtraError as exc:  # the checkpoint is written; the curves are only a picture of the log
            print(f"{self.out / 'curves.png'} not written: {exc}", file=sys.stderr)

    @torch.no_grad()
    def quick_eval(self) -> dict[str, float]:
        """Coverage of (a subset of, ``eval.val_poses``) the validation poses by ``eval.samples``
        poses of the EMA generator, and their diversity, for the curves."""
        from posesynth.metrics import apd, canonical_joints, coverage, nearest_mpjpe

        e = self.recipe.eval
        g = torch.Generator().manual_seed(1234)
        rest = self.template
        val = self.val.rotmats[torch.randperm(len(self.val), generator=g)[: e.val_poses]].to(self.device)
        z = torch.randn(e.samples, self.models.ema.sizes.latent, generator=g).to(self.device)
        labels = torch.full((e.samples,), self.any_label, device=self.device)
        fake = rot6d_to_matrix(self.models.ema(z, labels))
        real_j, fake_j = canonical_joints(val, rest), canonical_joints(fake, rest)
        cov = coverage(nearest_mpjpe(real_j, fake_j))
        return {"coverage_median_mm": cov["median_mm"], "coverage_under_100mm": cov["under_100mm"],
                "apd_mm": apd(fake_j, generator=g), "val_apd_mm": apd(real_j, generator=g)}


def write_recipe(recipe: TrainRecipe, path: Path) -> None:
    """The resolved recipe as TOML (two-level tables of plain values)."""
    lines = []
    for section, table in recipe.to_dict().items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in table.items()]
        lines.append("")
    with atomic_output(path) as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8")


def train(recipe_path: str | Path | None, data: str | Path, out: str | Path, overrides: tuple[str, ...] = (),
          device: torch.device | str = "cpu", progress: bool = True, body_model: str | Path | None = None) -> Path:
    """Train (or resume) a run in ``out`` with gan_default.toml <- ``recipe_path`` <- ``overrides``
    (``posesynth.gan.recipe.load_train_recipe``); returns the sampling checkpoint's path."""
    recipe = load_train_recipe(recipe_path, overrides)
    out = Path(out)
    check_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "recipe.toml"
    if (out / "state.pt").is_file() and saved.is_file():
        if replace(load_train_recipe(saved), train=recipe.train) != recipe:
            raise RecipeError(f"{out} holds a run with a different recipe ({saved}); use another --out "
                              "or the same recipe (only [train] may change on resume)")
    write_recipe(recipe, saved)
    trainer = Trainer(recipe, data, out, load_body_model(body_model), device)
    trainer.run(progress)
    return out / "checkpoint.pt"
