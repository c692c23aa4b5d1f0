"""``SampleError``: ``sample`` cannot run as asked; the one error class of ``posesynth.sampling``."""

from __future__ import annotations

from posesynth.errors import PosesynthError


class SampleError(PosesynthError, RuntimeError):
    """``sample`` cannot run as asked (bad source, label, resume mismatch); the message says why."""
