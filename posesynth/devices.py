"""The torch device a ``--device`` option names: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

One definition for every command that runs on a device (``train``, ``sample``, ``lift train``)
and for the library functions behind them, so they accept the same words and say the same
thing about a device this machine does not have.
"""

from __future__ import annotations

import torch

from posesynth.errors import UsageError


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when present, else the CPU; an unknown device, or CUDA (or a CUDA
    index) this machine does not have, is a UsageError naming ``--device``."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise UsageError(f"--device {device}: not a device (use auto, cpu, cuda or cuda:N)") from None
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"--device {device}: posesynth runs on auto, cpu, cuda or cuda:N only")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: this machine has no CUDA device (use --device cpu or auto)")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise UsageError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device
