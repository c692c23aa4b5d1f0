"""Reading ``torch.save`` files safely: tensors and plain values only, never pickled code.

GAN checkpoints, GAN training states and lifters are read through
``load_tensors_file``, which uses ``torch.load(..., weights_only=True)`` and turns any failure
into the caller's error type with a message that names the file.
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch


def load_tensors_file(path: str | Path, error: type[Exception], what: str) -> Any:
    """The object saved at ``path``; ``error(message)`` if it is missing or not a readable ``what``."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {what} not found")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; anything else is not ours
        raise error(f"{path}: not a readable {what} (not a torch.save archive)")
    try:
        with warnings.catch_warnings():  # torch's warnings about foreign pickles: the error below says it
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's message suggests weights_only=False, i.e. running whatever the file holds: never.
        raise error(f"{path}: not a readable {what}: not a posesynth file (it holds something other than "
                    "tensors and plain values, e.g. pickled objects), so it was not loaded") from None
    except Exception as exc:  # noqa: BLE001 - a damaged archive can fail anywhere inside torch's reader
        raise error(f"{path}: not a readable {what} ({type(exc).__name__}: {_first_line(exc)})") from None


def _first_line(exc: Exception) -> str:
    """The first line of ``exc``'s message, printable ASCII only (it may quote the file's bytes)."""
    lines = str(exc).splitlines()
    line = lines[0] if lines else "corrupt file"
    return line.encode("ascii", "backslashreplace").decode("ascii")

def require_keys(payload: dict[str, Any], keys: tuple[str, ...], path: str | Path, error: type[Exception],
                 what: str) -> None:
    """``error`` naming the file unless the loaded dict ``payload`` has every one of ``keys``."""
    missing = [k for k in keys if k not in payload]
    if missing:
        raise error(f"{path}: not a complete {what}: it has no {', '.join(map(repr, missing))}")
