"""Labels of a motion file, read from its name and folders.

Known naming schemes:

- HDM05 ``HDM_<subject>_<class>_<take>_<fps>.amc`` -> subject ``HDM_<subject>``, content ``<class>``.
- Bandai Namco ``dataset-<n>_<content>_<style>_<take>.bvh`` -> content and style; the
  files do not say which actor performed them, so the subject is ``unknown``.
- Anything else: the content is the name of the file's folder, the subject ``unknown``.

The *source* is the first folder below the data root the user gave (``hdm05``,
``bandai_namco``), or the root's own name for files directly inside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_HDM05 = re.compile(r"^HDM_(?P<subject>[a-z]{2})_(?P<content>.+)_(?P<take>\d+)_(?P<fps>\d+)$")
_BANDAI = re.compile(r"^dataset-(?P<n>\d+)_(?P<content>[a-z-]+)_(?P<style>[a-z-]+)_(?P<take>\d+)$")

UNKNOWN = "unknown"
NONE = "none"


@dataclass(frozen=True)
class FileLabels:
    source: str
    subject: str
    content: str
    style: str
    file: str  # path relative to the data root, with forward slashes


def labels_for(path: Path, root: Path) -> FileLabels:
    """Labels of ``path``, a file found under the data folder ``root``."""
    rel = path.relative_to(root) if path != root and root in path.parents else Path(path.name)
    source = rel.parts[0] if len(rel.parts) > 1 else (root.name if root.is_dir() else path.parent.name)
    stem = path.stem
    if m := _HDM05.match(stem):
        return FileLabels(source, f"HDM_{m['subject']}", m["content"], NONE, rel.as_posix())
    if m := _BANDAI.match(stem):
        return FileLabels(source, UNKNOWN, m["content"], m["style"], rel.as_posix())
    return FileLabels(source, UNKNOWN, path.parent.name, NONE, rel.as_posix())
