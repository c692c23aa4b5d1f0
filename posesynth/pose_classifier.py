"""A pose classifier trained on real poses, to check that conditional sampling follows
its label: if samples conditioned on class c are labelled c by a classifier that never
saw generated poses, the generator has learned what c looks like.

Input: canonical joints (N, 24, 3) (``posesynth.metrics.canonical_joints``); output:
class logits.  Trained with class-balanced sampling so rare classes count.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from posesynth.skeleton import NUM_JOINTS


class PoseClassifier(nn.Module):
    def __init__(self, num_classes: int, width: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(NUM_JOINTS * 3, width), nn.LeakyReLU(0.2), nn.Dropout(0.1),
            nn.Linear(width, width), nn.LeakyReLU(0.2), nn.Dropout(0.1), nn.Linear(width, num_classes))

    def forward(self, joints: torch.Tensor) -> torch.Tensor:
        """Canonical joints (B, 24, 3) -> logits (B, C)."""
        return self.net(joints.reshape(len(joints), -1) * 5.0)

    @torch.no_grad()
    def predict(self, joints: torch.Tensor) -> torch.Tensor:
        self.eval()
        return torch.cat([self(part.float()).argmax(-1) for part in joints.split(8192)])


def train_classifier(joints: torch.Tensor, labels: torch.Tensor, num_classes: int, steps: int = 3000,
                     batch_size: int = 512, seed: int = 0) -> PoseClassifier:
    """Fit on real poses with every class drawn equally often."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    counts = torch.bincount(labels, minlength=num_classes).clamp_min(1).double()
    weights = 1.0 / counts[labels]
    model = PoseClassifier(num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(steps):
        idx = torch.multinomial(weights, batch_size, replacement=True, generator=g)
        loss = F.cross_entropy(model(joints[idx].float()), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()
