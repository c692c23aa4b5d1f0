"""Writing posesynth's files: refuse what exists unless asked, and never leave half a file.

``check_output`` is the one rule for a data file a command writes (an export, a lifter, a
prediction, a picture, a mesh): an existing file is refused unless ``overwrite`` (the
command's ``--overwrite``), and a folder that cannot hold it (a regular file in the way, a
read-only or unwritable folder) is refused up front, before the command does its work.
``check_not_an_input`` refuses an output (a file or a store) that is one of the command's
inputs, which ``--overwrite`` would otherwise replace.

``atomic_output`` is the one way every file is written: the writer gets a temporary name in
the same folder, ``.<stem>.<random>.partial<suffix>`` (the suffix kept for writers that pick
the format from it: numpy's ``.npz``, Pillow's ``.png``), which is renamed onto the final name
only once the write has finished.  A killed write leaves at most that hidden temporary, never
a truncated file under the final name; a failed one removes it and raises ``OutputError``.
Reports (``--json``, ``--summary-json``: ``write_json``) are written the same way but replace
an existing file: they describe the run that wrote them.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from posesynth.errors import PosesynthError, os_reason


class OutputError(PosesynthError, RuntimeError):
    """An output file that cannot be written as asked; the message names it and says why."""


def check_folder(folder: str | Path) -> None:
    """OutputError unless ``folder`` is a writable folder or can be made (no file in the way)."""
    folder = Path(folder)
    for p in (folder, *folder.parents):
        if p.exists():
            if not p.is_dir():
                raise OutputError(f"cannot write in {folder}: {p} is a file, not a folder")
            if not os.access(p, os.W_OK | os.X_OK):
                raise OutputError(f"cannot write in {p}: " + ("the file system is read-only" if _read_only(p)
                                                               else "permission denied"))
            return


def _read_only(path: Path) -> bool:
    return bool(os.statvfs(path).f_flag & os.ST_RDONLY)


def check_output(path: str | Path, overwrite: bool = False) -> Path:
    """``path`` if a file can be written there: OutputError if it exists (unless ``overwrite``),
    is a folder, or its folder cannot be made or written."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path} is a folder; give the file to write")
    if path.exists() and not overwrite:
        raise OutputError(f"{path} already exists; pass --overwrite to replace it")
    check_folder(path.parent)
    return path


def check_not_an_input(out: str | Path, inputs: dict[str, str | Path | None]) -> None:
    """OutputError when ``out`` (the command's ``--out``) resolves to the same path as one of its
    ``inputs`` (option -> path; None: not given), which writing ``out`` would replace."""
    for option, path in inputs.items():
        if path is not None and Path(out).resolve() == Path(path).resolve():
            raise OutputError(f"--out {out} and {option} {path} are the same path: writing --out would replace "
                              "that input; give another --out")


def partial_name(path: Path) -> Path:
    """A fresh temporary name beside ``path`` with the same suffix."""
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.partial{path.suffix}")


@contextlib.contextmanager
def atomic_output(path: str | Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is renamed onto ``path`` (made atomically
    visible, replacing an existing file only if ``overwrite``), on failure it is removed.
    An OSError while writing becomes an OutputError naming ``path``."""
    path = check_output(path, overwrite)
    tmp = partial_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {os_reason(exc)}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def write_json(value: Any, path: str | Path) -> Path:
    """``value`` as indented JSON at ``path``, atomically; a report, so an existing file is replaced."""
    path = Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(value, indent=1), encoding="utf-8")
    return path
