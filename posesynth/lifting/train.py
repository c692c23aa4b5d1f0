"""Training a lifter on a weighted mix of sample stores.

Batches come from ``posesynth.data.mix`` (each row from store ``d`` with probability
proportional to its weight); every view of a multi-view store is a training example.  The
target is the keypoint set's camera-frame 3D relative to its root.

- ``mlp``: MPJPE loss, Adam, learning rate decayed exponentially from ``lr`` to ``lr_final``.
- ``cgan``: per input, ``hypotheses`` draws of z (the first z = 0).  Generator loss =
  ``adversarial`` x non-saturating GAN loss of the ``PairDiscriminator`` on every hypothesis
  + ``reconstruction`` x (best hypothesis' MPJPE + half the z = 0 one's: several plausible
  answers, one of them close, and a usable single prediction)
  + ``cycle`` x the reprojection error of each hypothesis placed in the camera
  (``geometry.reproject``), in feature units
  + ``betas_prior`` x |betas|^2.  The discriminator sees real (2D, 3D) pairs against generated ones.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from posesynth.data import mix
from posesynth.lifting.checkpoint import Lifter, LifterConfig, LifterError, build_model
from posesynth.lifting.features import keypoint_set, lifter_batch, lifter_features, root_weights
from posesynth.lifting.geometry import reproject
from posesynth.lifting.models import CGANLifter, PairDiscriminator
from posesynth.metrics import mpjpe

FIELDS = ("pixels", "camera", "K")


def parse_data_spec(spec: str) -> tuple[str, float]:
    """``"a.zarr"`` -> ("a.zarr", 1.0); ``"a.zarr:3"`` -> ("a.zarr", 3.0)."""
    path, sep, weight = spec.rpartition(":")
    if not sep or not path or "/" in weight:
        return spec, 1.0
    try:
        return path, float(weight)
    except ValueError:
        raise LifterError(f"--data {spec!r}: the weight after ':' must be a number") from None


class Batches:
    """Endless (features, coords, target) batches from weighted sample stores."""

    def __init__(self, data: Sequence[tuple[str | Path, float]], config: LifterConfig) -> None:
        self.stream = mix([(str(p), w) for p, w in data], batch_size=config.batch_size, seed=config.seed,
                          keypoint_set=config.keypoint_set, noisy=config.noisy, fields=FIELDS)
        self.root = root_weights(keypoint_set(config.keypoint_set))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        for epoch in itertools.count():
            self.stream.set_epoch(epoch)
            for batch in self.stream:
                yield self.prepare(batch)

    def prepare(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Views flattened into the batch: features (B, F), coords (B, J, 2), target (B, J, 3)."""
        return lifter_batch(*(batch[f].flatten(0, 1) for f in FIELDS), self.root)


def train_lifter(config: LifterConfig, data: Sequence[tuple[str | Path, float]], device: torch.device | str = "cpu",
                 progress: bool = True) -> Lifter:
    """Train a lifter on ``data`` ([(store path, weight), ...]) for ``config.steps`` steps."""
    torch.manual_seed(config.seed)
    model = build_model(config).to(device)
    if isinstance(model, CGANLifter):
        model.body.to(device)
    batches = Batches(data, config)
    step_fn = MLPSteps(model, config) if config.model == "mlp" else CGANSteps(model, config)
    bar = tqdm(total=config.steps, desc=f"lift train ({config.model})", unit="step", disable=not progress)
    losses: dict[str, float] = {}
    for step, (features, coords, target) in enumerate(batches):
        if step == config.steps:
            break
        losses = step_fn(features.to(device), coords.to(device), target.to(device), step)
        if step % 50 == 0:
            bar.set_postfix({k: f"{v:.4g}" for k, v in losses.items()})
        bar.update()
    bar.close()
    training = {"data": [[str(p), float(w)] for p, w in data], "steps": config.steps, "final_losses": losses}
    if isinstance(model, CGANLifter):
        model.body.cpu()
    return Lifter(model.cpu().eval(), config, training)


def exponential_lr(optimizer: torch.optim.Optimizer, config: LifterConfig) -> torch.optim.lr_scheduler.LRScheduler:
    gamma = math.exp(math.log(config.lr_final / config.lr) / max(1, config.steps))
    return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma)


class MLPSteps:
    def __init__(self, model: torch.nn.Module, config: LifterConfig) -> None:
        self.model = model.train()
        self.opt = torch.optim.Adam(model.parameters(), lr=config.lr)
        self.sched = exponential_lr(self.opt, config)

    def __call__(self, features, coords, target, step: int) -> dict[str, float]:
        loss = mpjpe(self.model(features), target).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.sched.step()
        return {"mpjpe_mm": loss.item() * 1000.0}


class CGANSteps:
    def __init__(self, model: CGANLifter, config: LifterConfig) -> None:
        self.model, self.config = model.train(), config
        self.disc = PairDiscriminator(model.kset, config.disc_width).to(next(model.parameters()).device)
        self.opt_g = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=config.lr_d, betas=(0.5, 0.999))
        self.sched = exponential_lr(self.opt_g, config)

    def __call__(self, features, coords, target, step: int) -> dict[str, float]:
        c, k = self.config, self.config.hypotheses
        B = features.shape[0]
        feats_k = features.repeat_interleave(k, 0)
        _, betas, pred = self.model.draw(features, k)  # (B k, ...), hypothesis 0 of each input: z = 0

        d_real = self.disc(features, target)
        d_fake = self.disc(feats_k, pred.detach())
        loss_d = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        adversarial = F.softplus(-self.disc(feats_k, pred)).mean()
        errors = mpjpe(pred.reshape(B, k, *pred.shape[1:]), target[:, None])  # (B, k)
        reconstruction = errors.min(1).values.mean() + 0.5 * errors[:, 0].mean()
        placed = lifter_features(reproject(pred, coords.repeat_interleave(k, 0)), self.model.root)
        cycle = (placed - feats_k).abs().mean()
        loss_g = (c.adversarial * adversarial + c.reconstruction * reconstruction + c.cycle * cycle
                  + c.betas_prior * betas.square().sum(-1).mean())
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt_g.step()
        self.sched.step()
        return {"best_mm": errors.min(1).values.mean().item() * 1000.0, "mode_mm": errors[:, 0].mean().item() * 1000.0,
                "cycle": cycle.item(), "d": loss_d.item(), "adv": adversarial.item()}
