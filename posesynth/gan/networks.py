"""Generator, discriminator and the auxiliary networks of the pose GAN.

Shapes: ``B`` batch, ``L`` labels (plus one "any" index, the last), 24 SMPL joints.
Poses are 24 rotations in the continuous 6D representation (``posesynth.rotations``);
entry 0 is the global orientation with its yaw removed.

- ``Generator``: latent ``z`` (B, Z) and a label -> 6D rotations (B, 24, 6), as a
  residual MLP around the training set's mean pose.
- ``Discriminator``: sees the rotations *and* the joints from forward kinematics,
  through a global head on [6D rotations, joint positions, kinematic-chain-space
  Gram matrix of bone vectors (RepNet, Wandt & Rosenhahn 2019)] plus one head per
  body part (torso, arms, legs; as in PoseAug, Gong et al. 2021), with a projection
  term for the label (Miyato & Koyama 2018).  Returns logits and the global head's
  last features (for the feature-matching loss).
- ``Encoder``: poses -> latent mean and log-variance, for the reconstruction term.
- ``Lifter``: 2D joints -> 3D joints, for the cycle-consistency term.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from posesynth.config import AT_LEAST_ONE, Section, ruled
from posesynth.keypoint_sets import KEYPOINT_SETS
from posesynth.kinematics import bone_gram
from posesynth.skeleton import JOINT_INDEX, NUM_JOINTS

BONES = KEYPOINT_SETS["smpl24"].edges  # (parent, child) of SMPL's 23 bones

BODY_PARTS: dict[str, tuple[str, ...]] = {
    "torso": ("pelvis", "spine1", "spine2", "spine3", "neck", "head", "left_collar", "right_collar"),
    "left_arm": ("left_collar", "left_shoulder", "left_elbow", "left_wrist", "left_hand"),
    "right_arm": ("right_collar", "right_shoulder", "right_elbow", "right_wrist", "right_hand"),
    "left_leg": ("pelvis", "left_hip", "left_knee", "left_ankle", "left_foot"),
    "right_leg": ("pelvis", "right_hip", "right_knee", "right_ankle", "right_foot"),
}


def mlp(sizes: list[int], last_activation: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or last_activation:
            layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LeakyReLU(0.2), nn.Linear(width, width), nn.LeakyReLU(0.2), nn.Linear(width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


@dataclass(frozen=True)
class NetworkSizes(Section):
    """The networks' sizes: the training recipe's ``[model]`` section (values in gan_default.toml)."""

    NAME = "model"

    latent: int = ruled(AT_LEAST_ONE)  # Z, the latent's dimension
    width: int = ruled(AT_LEAST_ONE)  # generator and encoder hidden width
    blocks: int = ruled(AT_LEAST_ONE)  # generator residual blocks
    label_embedding: int = ruled(AT_LEAST_ONE)
    disc_width: int = ruled(AT_LEAST_ONE)  # discriminator global head width
    part_width: int = ruled(AT_LEAST_ONE)  # discriminator per-part head width


class Generator(nn.Module):
    def __init__(self, sizes: NetworkSizes, num_labels: int, mean_pose6d: torch.Tensor) -> None:
        super().__init__()
        self.sizes = sizes
        self.num_labels = num_labels
        self.embed = nn.Embedding(num_labels + 1, sizes.label_embedding)  # last index: "any"
        self.inp = nn.Linear(sizes.latent + sizes.label_embedding, sizes.width)
        self.blocks = nn.Sequential(*[ResidualBlock(sizes.width) for _ in range(sizes.blocks)])
        self.out = nn.Sequential(nn.LeakyReLU(0.2), nn.Linear(sizes.width, NUM_JOINTS * 6))
        nn.init.zeros_(self.out[1].weight)
        nn.init.zeros_(self.out[1].bias)
        self.register_buffer("mean_pose6d", mean_pose6d.reshape(NUM_JOINTS, 6).clone())

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``z`` (B, Z), ``labels`` (B,) in [0, L] (L = any) -> 6D rotations (B, 24, 6)."""
        h = self.inp(torch.cat([z, self.embed(labels)], dim=-1))
        return self.mean_pose6d + self.out(self.blocks(h)).reshape(-1, NUM_JOINTS, 6)


class Discriminator(nn.Module):
    def __init__(self, sizes: NetworkSizes, num_labels: int) -> None:
        super().__init__()
        n_kcs = len(BONES) * (len(BONES) + 1) // 2
        self.trunk = mlp([NUM_JOINTS * 6 + NUM_JOINTS * 3 + n_kcs, sizes.disc_width, sizes.disc_width,
                          sizes.disc_width], last_activation=True)
        self.head = nn.Linear(sizes.disc_width, 1)
        self.embed = nn.Embedding(num_labels + 1, sizes.disc_width)
        nn.init.zeros_(self.embed.weight)
        self.part_index = {name: [JOINT_INDEX[j] for j in joints] for name, joints in BODY_PARTS.items()}
        self.parts = nn.ModuleDict({
            name: mlp([len(idx) * 9, sizes.part_width, sizes.part_width, 1]) for name, idx in self.part_index.items()
        })

    def forward(self, rot6d: torch.Tensor, joints: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``rot6d`` (B, 24, 6), root-centred ``joints`` (B, 24, 3), ``labels`` (B,) ->
        logits (B,) and features (B, disc_width)."""
        B = rot6d.shape[0]
        x = torch.cat([rot6d.reshape(B, -1), joints.reshape(B, -1), bone_gram(joints, BONES)], dim=-1)
        features = self.trunk(x)
        logit = self.head(features).squeeze(-1) + (self.embed(labels) * features).sum(-1)
        for name, idx in self.part_index.items():
            local = joints[:, idx] - joints[:, idx[:1]]
            part = torch.cat([rot6d[:, idx].reshape(B, -1), local.reshape(B, -1)], dim=-1)
            logit = logit + self.parts[name](part).squeeze(-1)
        return logit, features


class Encoder(nn.Module):
    """Poses (B, 24, 6) and labels -> latent mean and log-variance, each (B, Z)."""

    def __init__(self, sizes: NetworkSizes, num_labels: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_labels + 1, sizes.label_embedding)
        self.net = mlp([NUM_JOINTS * 6 + sizes.label_embedding, sizes.width, sizes.width, 2 * sizes.latent])

    def forward(self, rot6d: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(torch.cat([rot6d.reshape(rot6d.shape[0], -1), self.embed(labels)], dim=-1))
        mean, logvar = out.chunk(2, dim=-1)
        return mean, logvar.clamp(-8.0, 4.0)


class Lifter(nn.Module):
    """Root-centred 2D joints (B, 24, 2) -> root-centred 3D joints (B, 24, 3)."""

    def __init__(self, width: int = 256) -> None:
        super().__init__()
        self.net = mlp([NUM_JOINTS * 2, width, width, NUM_JOINTS * 3])

    def forward(self, joints2d: torch.Tensor) -> torch.Tensor:
        return self.net(joints2d.reshape(joints2d.shape[0], -1)).reshape(-1, NUM_JOINTS, 3)
