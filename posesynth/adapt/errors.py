"""The error of ``posesynth adapt`` and of the 2D distance to a target."""

from __future__ import annotations

from posesynth.errors import PosesynthError


class AdaptError(PosesynthError, ValueError):
    """A target 2D file, checkpoint or option that adaptation cannot use; the message names it."""
