"""The 3D GAN's own discriminator as a fine-tuning term, from the checkpoint's training state.

A checkpoint holds only the (EMA) generator; the training run's ``state.pt``
(``posesynth.gan.train``) holds the 3D discriminator too.  Given that state, fine-tuning adds the
discriminator's non-saturating loss on the generated rotations and root-relative joints
(``finetune.critic_3d``), frozen: there is no real 3D to keep training it on.  The state must be
the checkpoint's own: its EMA generator's weights must equal the checkpoint's.
"""

from __future__ import annotations

from pathlib import Path

import torch

from posesynth.adapt.errors import AdaptError
from posesynth.gan.checkpoint import GanPoseSource
from posesynth.gan.networks import Discriminator
from posesynth.torch_files import load_tensors_file


def load_critic(path: str | Path, source: GanPoseSource) -> Discriminator:
    """The frozen 3D discriminator of the training state at ``path``; AdaptError unless it is
    ``source``'s training state."""
    path = Path(path)
    state = load_tensors_file(path, AdaptError, "GAN training state (state.pt of posesynth train)")
    models = state.get("models") if isinstance(state, dict) else None
    if not isinstance(models, dict) or "discriminator" not in models or "ema" not in models:
        raise AdaptError(f"{path}: not a posesynth GAN training state (no discriminator)")
    mine = {k: v.cpu() for k, v in source.generator.state_dict().items()}
    if mine.keys() != models["ema"].keys() or not all(torch.equal(mine[k], models["ema"][k]) for k in mine):
        raise AdaptError(f"{path}: not the training state of {source.path} (its generator differs); pass the "
                         "state.pt saved with that checkpoint")
    critic = Discriminator(source.recipe.model, len(source.label_names))
    critic.load_state_dict(models["discriminator"])
    return critic.eval().requires_grad_(False)
