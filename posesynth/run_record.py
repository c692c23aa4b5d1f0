"""The run record: what wrote a store or a checkpoint, on what, and how it was invoked.

``run_record(device)`` is the ``run`` attribute of every store (sample and training) and the
``run`` entry of every GAN checkpoint:

- ``posesynth``, ``python`` and ``packages``: the versions of posesynth, Python and the packages
  that compute or write the data (``PACKAGES``; None for one that is not installed);
- ``platform``: the operating system and machine (``platform.platform()``);
- ``device``: what computed the data, e.g. ``cpu`` or ``cuda:0 (NVIDIA H200)``;
- ``command``: the command line, ``["posesynth", "sample", ...]`` when the run came from the
  ``posesynth`` command, None when a program called the library;
- ``created``: when, in UTC, to the second.

It describes the machine and the moment, not the data: two runs with the same seed, recipe and
source write identical arrays and differ only here.  Nothing in it is compared on ``--resume``
(a resumed store keeps the record of the run that created it).
"""

from __future__ import annotations

import contextlib
import datetime
import platform
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from posesynth import __version__

if TYPE_CHECKING:  # the CLI imports this module at start-up: torch only when a record is made
    import torch

PACKAGES = ("torch", "numpy", "scipy", "zarr", "numcodecs", "smplx")

_COMMAND: ContextVar[list[str] | None] = ContextVar("posesynth_command", default=None)


@contextlib.contextmanager
def command_line(argv: Sequence[str]) -> Iterator[None]:
    """Record ``argv`` as the command line of the runs started inside the block (the CLI wraps
    every command in it)."""
    token = _COMMAND.set(list(argv))
    try:
        yield
    finally:
        _COMMAND.reset(token)


def describe_device(device: torch.device | str) -> str:
    """``cpu``, or a CUDA device with its name: ``cuda:0 (NVIDIA H200)``."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return device.type
    index = torch.cuda.current_device() if device.index is None else device.index
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def _installed(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def run_record(device: torch.device | str) -> dict[str, Any]:
    """The ``run`` record (see the module) of a run computing on ``device``."""
    return {
        "posesynth": __version__,
        "python": platform.python_version(),
        "packages": {name: _installed(name) for name in PACKAGES},
        "platform": platform.platform(),
        "device": describe_device(device),
        "command": _COMMAND.get(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
