"""Reading ``torch.save`` files safely: tensors and plain values only, never pickled code.

GAN checkpoints, GAN training states and lifters are read through
``load_tensors_file``, which uses ``torch.load(..., weights_only=True)`` and turns any failure
into the caller's error type with a message that names the file.
"""

from __future__ import annotations

import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any

import torch


def load_tensors_file(path: str | Path, error: type[Exception], what: str) -> Any:
    """The object saved at ``path``; ``error(message)`` if it is missing or not a readable ``what``."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {what} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, struct.error, OSError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else "corrupt file"
        raise error(f"{path}: not a readable {what} ({type(exc).__name__}: {detail})") from None
