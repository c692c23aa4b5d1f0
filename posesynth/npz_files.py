"""Reading ``.npz`` files safely: plain arrays only, never pickled objects.

Body models, keypoint clips and 2D keypoint files are read through ``read_npz_arrays``, which
refuses anything but a zip archive of plain arrays (numpy would take other bytes for a pickle)
and says why in words the caller puts after the file's name.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from posesynth.errors import PosesynthError


class NpzUnreadable(PosesynthError, ValueError):
    """Why an ``.npz`` file cannot be read; the message does not name the file."""


def read_npz_arrays(path: str | Path, what: str) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` at ``path``; ``NpzUnreadable`` if it is not a readable
    ``what`` (e.g. "body model") or holds pickled objects, which are never loaded."""
    if not zipfile.is_zipfile(path):
        raise NpzUnreadable(f"not a readable .npz {what} (not a zip archive of arrays)")
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as data:  # closed even when numpy fails
            return {name: data[name] for name in data.files}
    except ValueError as exc:  # numpy's error for an object array names pickles
        if "pickle" in str(exc):
            raise NpzUnreadable("holds pickled Python objects, so it was not loaded: posesynth reads plain "
                                "arrays only (save them with np.savez)") from None
        raise NpzUnreadable(f"not a readable .npz {what} ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise NpzUnreadable(f"not a readable .npz {what} ({exc})") from None
