"""The one base class of every error posesynth reports to its user.

Each module keeps its own error class (``StoreError``, ``SampleError``, ``RecipeError``, ...),
and each of them derives from ``PosesynthError`` as well as from the ``ValueError`` or
``RuntimeError`` it always had, so code that catches those still works.  The command line
(``posesynth.cli``) catches ``PosesynthError`` once, for every command, and prints
``error: <message>`` without a traceback: a ``PosesynthError`` is a problem with the input,
the arguments or the disk that the message explains, never a bug.  Anything else that
escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import importlib


class PosesynthError(Exception):
    """A problem the user can fix, with a message that names the file or option at fault."""


class UsageError(PosesynthError, ValueError):
    """Arguments that do not fit together or are out of range (the message names the option)."""


class MissingExtraError(PosesynthError, ImportError):
    """An optional dependency group (``pip install 'posesynth[render]'``) that is not installed."""


def require_extra(extra: str, needed_by: str, *modules: str) -> None:
    """MissingExtraError, "<needed_by> needs the [<extra>] extra: pip install 'posesynth[<extra>]'",
    unless every one of ``modules`` (import names: ``"PIL"``, ``"distributed"``) imports."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            raise MissingExtraError(f"{needed_by} needs the [{extra}] extra: pip install 'posesynth[{extra}]'") from None


def os_reason(exc: OSError) -> str:
    """A short, plain reason for a failed file operation: "the disk is full", "permission denied"..."""
    reasons = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
               errno.EACCES: "permission denied", errno.EPERM: "permission denied",
               errno.EROFS: "the file system is read-only", errno.ENOTDIR: "a file is in the way of its folder",
               errno.EISDIR: "it is a folder"}
    return reasons.get(exc.errno, exc.strerror or str(exc) or type(exc).__name__)
