"""Latents a checkpoint draws around: the bank ``posesynth adapt`` fits to a target's poses.

A generator is sampled from a standard normal latent.  An adapted checkpoint also holds a
``LatentBank``: latents fitted to the target's 2D poses (``posesynth.adapt.inversion``), one per
pose.  Its draws pick a fitted latent uniformly, then add ``jitter * N(0, 1)``, so that samples
follow the target's distribution of poses and vary around each; a tempered source widens the
jitter (``temperature * jitter``).  The bank serves the "any label" draws: the target has no
labels, so a labelled draw comes from the standard normal as before.

Shapes: N fitted latents, Z the latent size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class LatentBank:
    latents: torch.Tensor  # (N, Z), float32
    jitter: float

    def draw(self, n: int, generator: torch.Generator, temperature: float = 1.0) -> torch.Tensor:
        """(n, Z) latents: rows of the bank, then the jitter, drawn on the CPU from ``generator``."""
        rows = torch.randint(len(self.latents), (n,), generator=generator)
        noise = torch.randn(n, self.latents.shape[1], generator=generator)
        return self.latents[rows] + (temperature * self.jitter) * noise

    def to_dict(self) -> dict[str, Any]:
        return {"latents": self.latents.detach().cpu().float(), "jitter": float(self.jitter)}

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
        return cls(latents.float(), float(jitter))
