"""The error every rendering step raises for a request it cannot fulfil."""

from __future__ import annotations

from posesynth.errors import PosesynthError


class RenderError(PosesynthError, RuntimeError):
    """Rendering cannot be done as asked; the message says why."""
