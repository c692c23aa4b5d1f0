"""The lifters' networks.  ``F`` = 2 J + 2 input features (``posesynth.lifting.features``).

- ``MLPLifter``: SimpleBaseline (Martinez et al., ICCV 2017): a linear layer to ``width``, then
  ``blocks`` residual blocks of two (linear, batch norm, ReLU, dropout) layers, then a linear
  layer to J x 3.  Features (B, F) -> root-relative 3D (B, J, 3), metres.
- ``CGANLifter``: the seed's conditional generator.  Features (B, F) and noise z (B, Z) -> 24 SMPL
  rotations in 6D (entry 0: the body's orientation in the *camera* frame) and betas, turned into
  the keypoint set's 3D by the body model (rest joints from betas, forward kinematics, landmark
  vertices where the set needs them), so every hypothesis is a real body with consistent bones.
  Different z give different hypotheses; z = 0 is its single "mode" prediction.
- ``PairDiscriminator``: judges a (2D features, 3D pose) pair: one head on the pair, one on the
  3D pose alone (the Gram matrix of its bone vectors, the kinematic-chain space of RepNet).
"""

from __future__ import annotations

import torch
from torch import nn

from posesynth.body_model import BodyModel
from posesynth.keypoint_sets import KeypointSet, compute_keypoints
from posesynth.kinematics import bone_gram, forward_kinematics
from posesynth.lifting.features import root_relative, root_weights
from posesynth.rotations import matrix_to_rot6d, rot6d_to_matrix
from posesynth.skeleton import NUM_JOINTS

CAMERA_UPRIGHT = torch.diag(torch.tensor([1.0, -1.0, -1.0]))  # SMPL's +y up, +z facing -> camera y down, facing it


class LinearBlock(nn.Sequential):
    def __init__(self, a: int, b: int, dropout: float) -> None:
        super().__init__(nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU(), nn.Dropout(dropout))


class Residual(nn.Module):
    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(LinearBlock(width, width, dropout), LinearBlock(width, width, dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


def residual_mlp(inputs: int, outputs: int, width: int, blocks: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(LinearBlock(inputs, width, dropout), *[Residual(width, dropout) for _ in range(blocks)],
                         nn.Linear(width, outputs))


class MLPLifter(nn.Module):
    """SimpleBaseline: features (B, F) -> root-relative 3D (B, J, 3) (the root is subtracted)."""

    def __init__(self, kset: KeypointSet, width: int = 1024, blocks: int = 2, dropout: float = 0.25) -> None:
        super().__init__()
        self.num_joints = len(kset.joint_names)
        self.net = residual_mlp(2 * self.num_joints + 2, 3 * self.num_joints, width, blocks, dropout)
        self.register_buffer("root", root_weights(kset))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return root_relative(self.net(features).reshape(-1, self.num_joints, 3), self.root)


class CGANLifter(nn.Module):
    """Features (B, F) and noise (B, Z) -> SMPL rotations (B, 24, 3, 3), betas (B, K) and the
    keypoint set's root-relative 3D (B, J, 3); see the module doc."""

    def __init__(self, kset: KeypointSet, body: BodyModel, latent: int = 16, width: int = 1024, blocks: int = 2,
                 dropout: float = 0.1, num_betas: int = 10) -> None:
        super().__init__()
        self.kset, self.latent, self.num_betas = kset, latent, num_betas
        self._body = (body,)  # not a submodule: its buffers are the body model's, not the lifter's weights
        J = len(kset.joint_names)
        self.net = residual_mlp(2 * J + 2 + latent, NUM_JOINTS * 6 + num_betas, width, blocks, dropout)
        last = self.net[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        rest = torch.eye(3).repeat(NUM_JOINTS, 1, 1)
        rest[0] = CAMERA_UPRIGHT
        self.register_buffer("mean_rot6d", matrix_to_rot6d(rest))
        self.register_buffer("root", root_weights(kset))

    @property
    def body(self) -> BodyModel:
        return self._body[0]

    def forward(self, features: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.net(torch.cat([features, z], dim=-1))
        rotmats = rot6d_to_matrix(self.mean_rot6d + out[:, :NUM_JOINTS * 6].reshape(-1, NUM_JOINTS, 6))
        betas = out[:, NUM_JOINTS * 6:]
        return rotmats, betas, self.keypoints(rotmats, betas)

    def keypoints(self, rotmats: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        """SMPL rotations (B, 24, 3, 3) and betas (B, K) -> root-relative keypoints (B, J, 3)."""
        full = nn.functional.pad(betas, (0, self.body.num_betas - betas.shape[1])).to(self.body.dtype)
        global_rotmats, joints = forward_kinematics(rotmats, self.body.rest_joints(full))
        points = compute_keypoints([self.kset.name], self.body, global_rotmats, joints, full)[self.kset.name]
        return root_relative(points, self.root)

    def mode(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The z = 0 prediction: ``forward``'s outputs for features (B, F)."""
        return self(features, torch.zeros(len(features), self.latent).to(features))

    def draw(self, features: torch.Tensor, k: int, generator: torch.Generator | None = None
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``k`` hypotheses per input, input-major: ``forward``'s outputs with B k rows; the first
        of each input's k is the z = 0 prediction."""
        B = features.shape[0]
        z = torch.randn(B, k, self.latent, generator=generator).to(features)
        z[:, 0] = 0.0
        return self(features.repeat_interleave(k, 0), z.reshape(B * k, -1))

    def hypotheses(self, features: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``k`` hypotheses per input: (B, k, J, 3); hypothesis 0 is the z = 0 prediction."""
        points = self.draw(features, k, generator)[2]
        return points.reshape(len(features), k, *points.shape[1:])


class PairDiscriminator(nn.Module):
    """(features (B, F), root-relative 3D (B, J, 3)) -> logits (B,): pair head + pose head."""

    def __init__(self, kset: KeypointSet, width: int = 512) -> None:
        super().__init__()
        J, E = len(kset.joint_names), len(kset.edges)
        self.edges = kset.edges
        act = nn.LeakyReLU(0.2)
        self.pair = nn.Sequential(nn.Linear(2 * J + 2 + 3 * J, width), act, nn.Linear(width, width), act,
                                  nn.Linear(width, 1))
        self.pose = nn.Sequential(nn.Linear(E * (E + 1) // 2, width // 2), act, nn.Linear(width // 2, width // 2), act,
                                  nn.Linear(width // 2, 1))

    def forward(self, features: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        pair = self.pair(torch.cat([features, points.flatten(1)], dim=-1))
        return (pair + self.pose(bone_gram(points, self.edges))).squeeze(-1)
