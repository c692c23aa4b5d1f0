"""Latents a checkpoint draws around: the bank ``posesynth adapt`` fits to a target's poses.

A generator is sampled from a standard normal latent.  An adapted checkpoint also holds a
``LatentBank``: latents fitted to the target's 2D poses (``posesynth.adapt.inversion``), one per
pose.  Its draws pick a fitted latent uniformly, then add ``jitter * N(0, 1)``, so that samples
follow the target's distribution of poses and vary around each; a tempered source widens the
jitter (``temperature * jitter``).  The bank may also hold each fitted pose's *turns*: small
rotations of its body joints beyond what the generator gives (fitted with the latents), applied
to every pose drawn around that latent (held to the checkpoint's joint limits, when it has them:
``GanPoseSource``, ``plausibility.turned_within_limits``).  The bank serves the "any label"
draws: the target has no labels, so a labelled draw comes from the standard normal as before.

Shapes: N fitted latents, Z the latent size, 23 body joints (the root is never turned).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from posesynth.rotations import axis_angle_to_matrix
from posesynth.skeleton import NUM_JOINTS


def turned(rotmats: torch.Tensor, turns: torch.Tensor | None) -> torch.Tensor:
    """Local rotations (B, 24, 3, 3) with each body joint's turned by ``turns`` (B, 23, 3)
    axis-angle, radians (after its own rotation); ``rotmats`` when ``turns`` is None."""
    if turns is None:
        return rotmats
    return torch.cat([rotmats[:, :1], rotmats[:, 1:] @ axis_angle_to_matrix(turns.to(rotmats))], 1)


@dataclass(frozen=True)
class LatentBank:
    latents: torch.Tensor  # (N, Z), float32
    jitter: float
    turns: torch.Tensor | None = None  # (N, 23, 3) axis-angle, radians, float32: each pose's body joints turned

    @property
    def format_version(self) -> int:
        """The checkpoint format that holds this bank: 3 with turns, else 2."""
        return 2 if self.turns is None else 3

    def draw(self, n: int, generator: torch.Generator,
             temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(n, Z) latents: rows of the bank, then the jitter, drawn on the CPU from ``generator``;
        and the rows' turns (n, 23, 3), or None for a bank without."""
        rows = torch.randint(len(self.latents), (n,), generator=generator)
        noise = torch.randn(n, self.latents.shape[1], generator=generator)
        turns = None if self.turns is None else self.turns[rows]
        return self.latents[rows] + (temperature * self.jitter) * noise, turns

    def to_dict(self) -> dict[str, Any]:
        return {"latents": self.latents.detach().cpu().float(), "jitter": float(self.jitter),
                **({} if self.turns is None else {"turns": self.turns.detach().cpu().float()})}

    @classmethod
    def from_dict(cls, d: dict[str, Any], latent_size: int) -> LatentBank:
        """The bank of a checkpoint's ``latent_bank`` entry; ``ValueError`` if it is not
        (N, ``latent_size``) finite latents with a non-negative jitter."""
        if not isinstance(d, dict):
            raise ValueError("latent_bank must be a table of latents and jitter")
        latents, jitter = d.get("latents"), d.get("jitter")
        if (not isinstance(latents, torch.Tensor) or latents.ndim != 2 or latents.shape[1] != latent_size
                or not len(latents) or not torch.isfinite(latents).all()):
            raise ValueError(f"latent_bank.latents must be finite latents (N, {latent_size})")
        if not isinstance(jitter, (int, float)) or not jitter >= 0:
            raise ValueError(f"latent_bank.jitter must be a number >= 0, got {jitter!r}")
        turns = d.get("turns")
        shape = (len(latents), NUM_JOINTS - 1, 3)
        if turns is not None and (not isinstance(turns, torch.Tensor) or turns.shape != shape
                                  or not torch.isfinite(turns).all()):
            raise ValueError(f"latent_bank.turns must be finite axis-angle turns {shape}")
        return cls(latents.float(), float(jitter), None if turns is None else turns.float())
