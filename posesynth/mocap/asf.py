"""Acclaim ASF skeleton files (HDM05, the CMU database): parsing, and finding an AMC file's ASF.

Values stay in file units (lengths: 1/L inch for ``:units length L``; angles: the ``:units
angle``); :mod:`posesynth.mocap.amc` reads the motion and documents how the ASF's ``axis``,
``dof``, root ``order``/``position``/``orientation`` enter the forward kinematics.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posesynth.mocap.motion import MocapFormatError, parse_float, read_text

__all__ = ["AsfBone", "AsfSkeleton", "asf_candidates", "find_asf", "read_asf"]

_ROOT_TOKENS = ("TX", "TY", "TZ", "RX", "RY", "RZ")
_DOFS = ("rx", "ry", "rz")


@dataclass(frozen=True, eq=False)
class AsfBone:
    """One bone of an ASF skeleton (file units).

    Attributes:
        name: bone name.
        direction: (3,) unit vector of the bone in world axes at rest.
        length: bone length in file units.
        axis: (3,) angles in the ASF's angle unit, paired with ``axis_order`` letter by letter.
        axis_order: e.g. ``"XYZ"``.
        dofs: rotational dofs in file order, e.g. ``("rx", "ry", "rz")``; empty if fixed.
        line: 1-based line of its ``begin``.
    """

    name: str
    direction: np.ndarray
    length: float
    axis: np.ndarray
    axis_order: str
    dofs: tuple[str, ...]
    line: int


@dataclass(frozen=True, eq=False)
class AsfSkeleton:
    """A parsed ASF file.

    Attributes:
        path: the .asf file.
        bones: every bone reachable from the root, in hierarchy (depth-first) order.
        parents: (1 + len(bones),) parent index of ``root`` (-1) and of each bone (0 = root).
        length_unit: the ``:units length`` value (1 unit = 1/length_unit inch).
        degrees: whether the ASF's angles are in degrees.
        root_order: the AMC root channels, e.g. ``("TX", "TY", "TZ", "RX", "RY", "RZ")``.
        root_axis: order of the root's pre-set orientation, e.g. ``"XYZ"``.
        root_position: (3,) pre-set position (file units).
        root_orientation: (3,) pre-set orientation (ASF angle unit).
    """

    path: Path
    bones: tuple[AsfBone, ...]
    parents: tuple[int, ...]
    length_unit: float
    degrees: bool
    root_order: tuple[str, ...]
    root_axis: str
    root_position: np.ndarray
    root_orientation: np.ndarray

    @property
    def joint_names(self) -> tuple[str, ...]:
        return ("root",) + tuple(b.name for b in self.bones)


def read_asf(path: str | Path) -> AsfSkeleton:
    """Parse an ASF skeleton file (cached by path, size and modification time)."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return _parse_asf(path)  # raises the proper "not found"/"cannot read" error
    return _read_asf_cached(path, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=32)
def _read_asf_cached(path: Path, mtime_ns: int, size: int) -> AsfSkeleton:
    return _parse_asf(path)


def _asf_lines(text: str) -> list[tuple[int, list[str]]]:
    """(1-based line, tokens) of every non-empty line; '#' comments, commas and parentheses removed."""
    out = []
    table = str.maketrans({",": " ", "(": " ", ")": " "})
    for i, raw in enumerate(text.split("\n"), start=1):
        toks = raw.split("#", 1)[0].translate(table).split()
        if toks:
            out.append((i, toks))
    return out


def _parse_asf(path: Path) -> AsfSkeleton:
    text = read_text(path, "ASF skeleton file")
    lines = _asf_lines(text)
    if not lines or not lines[0][1][0].startswith(":"):
        first = " ".join(lines[0][1])[:40] if lines else ""
        raise MocapFormatError(
            path, f"not an ASF file: expected a ':keyword' line first, found {first!r}", line=lines[0][0] if lines else 1
        )

    def floats(toks: list[str], n: int, what: str, line: int) -> np.ndarray:
        if len(toks) != n:
            raise MocapFormatError(path, f"{what} needs {n} numbers, found {len(toks)}", line=line)
        vals = np.array([parse_float(t, path, line, what) for t in toks])
        if not np.all(np.isfinite(vals)):
            raise MocapFormatError(path, f"non-finite value in {what}", line=line)
        return vals

    length_unit, degrees = 1.0, True
    root_order: tuple[str, ...] | None = None
    root_axis, root_pos, root_ori = "XYZ", np.zeros(3), np.zeros(3)
    bones: dict[str, AsfBone] = {}
    children: dict[str, list[str]] = {}
    child_line: dict[str, int] = {}
    section = None
    seen_root = seen_hierarchy = False
    bone: dict | None = None
    for line, toks in lines:
        key = toks[0].lower()
        if key.startswith(":"):
            if bone is not None:
                raise MocapFormatError(path, f"bone block opened at line {bone['line']} has no 'end'", line=line)
            section = key
            seen_root |= key == ":root"
            seen_hierarchy |= key == ":hierarchy"
            continue
        if section == ":units":
            if key == "length":
                length_unit = floats(toks[1:], 1, "units length", line)[0]
                if length_unit <= 0:
                    raise MocapFormatError(path, "units length must be > 0", line=line)
            elif key == "angle":
                unit = toks[1].lower() if len(toks) > 1 else ""
                if unit not in ("deg", "rad"):
                    raise MocapFormatError(path, f"units angle must be 'deg' or 'rad', found {unit!r}", line=line)
                degrees = unit == "deg"
        elif section == ":root":
            if key == "order":
                root_order = tuple(t.upper() for t in toks[1:])
                bad = [t for t in root_order if t not in _ROOT_TOKENS]
                if bad or len(set(root_order)) != len(root_order):
                    raise MocapFormatError(
                        path, f"bad root order {' '.join(toks[1:])!r} (tokens from {' '.join(_ROOT_TOKENS)}, each once)", line=line
                    )
            elif key == "axis":
                root_axis = _axis_order(path, toks[1:], line)
            elif key == "position":
                root_pos = floats(toks[1:], 3, "root position", line)
            elif key == "orientation":
                root_ori = floats(toks[1:], 3, "root orientation", line)
        elif section == ":bonedata":
            if key == "begin":
                if bone is not None:
                    raise MocapFormatError(path, f"bone block opened at line {bone['line']} has no 'end'", line=line)
                bone = {"line": line}
            elif key == "end":
                if bone is None:
                    raise MocapFormatError(path, "'end' without 'begin' in :bonedata", line=line)
                b = _make_bone(path, bone, line)
                if b.name in bones or b.name == "root":
                    raise MocapFormatError(path, f"bone {b.name!r} defined twice", line=bone["line"])
                bones[b.name] = b
                bone = None
            elif bone is None:
                raise MocapFormatError(path, f"{toks[0]!r} outside a begin/end bone block", line=line)
            elif key == "name":
                if len(toks) != 2:
                    raise MocapFormatError(path, "bone name must be one word", line=line)
                bone["name"] = toks[1]
            elif key == "direction":
                bone["direction"] = floats(toks[1:], 3, "direction", line)
            elif key == "length":
                bone["length"] = floats(toks[1:], 1, "length", line)[0]
            elif key == "axis":
                bone["axis"] = floats(toks[1:4], 3, "axis", line)
                bone["axis_order"] = _axis_order(path, toks[4:], line)
            elif key == "dof":
                dofs = tuple(t.lower() for t in toks[1:])
                for d in dofs:
                    if d not in _DOFS:
                        raise MocapFormatError(
                            path, f"dof {d!r} is not supported (only rx, ry, rz rotations)", line=line
                        )
                if len(set(dofs)) != len(dofs):
                    raise MocapFormatError(path, f"repeated dof in {' '.join(toks[1:])!r}", line=line)
                bone["dofs"] = dofs
            # id, limits (and their continuation lines), bodymass, cofmass: not needed
        elif section == ":hierarchy":
            if key in ("begin", "end"):
                continue
            parent, kids = toks[0], toks[1:]
            if parent != "root" and parent not in bones:
                raise MocapFormatError(
                    path, f"bone {parent!r} is referenced in :hierarchy but never defined in :bonedata", line=line
                )
            for kid in kids:
                if kid not in bones:
                    raise MocapFormatError(
                        path, f"bone {kid!r} is referenced in :hierarchy but never defined in :bonedata", line=line
                    )
                if kid in child_line:
                    raise MocapFormatError(
                        path, f"bone {kid!r} has two parents in :hierarchy (first at line {child_line[kid]})", line=line
                    )
                child_line[kid] = line
            children.setdefault(parent, []).extend(kids)
    last = lines[-1][0]
    if bone is not None:
        raise MocapFormatError(path, f"bone block opened at line {bone['line']} has no 'end'", line=last)
    if not seen_root:
        raise MocapFormatError(path, "no :root section", line=last)
    if root_order is None:
        raise MocapFormatError(path, "the :root section has no 'order' line", line=last)
    if bones and not seen_hierarchy:
        raise MocapFormatError(path, "no :hierarchy section", line=last)

    ordered: list[AsfBone] = []
    parents = [-1]
    stack = [(kid, 0) for kid in reversed(children.get("root", []))]
    while stack:  # depth first, children in listed order
        name, parent = stack.pop()
        ordered.append(bones[name])
        parents.append(parent)
        me = len(ordered)
        stack.extend((kid, me) for kid in reversed(children.get(name, [])))
    return AsfSkeleton(
        path=path,
        bones=tuple(ordered),
        parents=tuple(parents),
        length_unit=float(length_unit),
        degrees=degrees,
        root_order=root_order,
        root_axis=root_axis,
        root_position=root_pos,
        root_orientation=root_ori,
    )


def _axis_order(path: Path, toks: list[str], line: int) -> str:
    order = "".join(toks).upper()
    if not order:
        return "XYZ"
    if sorted(order) != ["X", "Y", "Z"]:
        raise MocapFormatError(path, f"bad axis order {order!r} (expected e.g. XYZ)", line=line)
    return order


def _make_bone(path: Path, b: dict, end_line: int) -> AsfBone:
    for key in ("name", "direction", "length"):
        if key not in b:
            raise MocapFormatError(path, f"bone block has no {key!r}", line=b["line"])
    direction = b["direction"]
    norm = float(np.linalg.norm(direction))
    axis = b.get("axis", np.zeros(3))
    order = b.get("axis_order", "XYZ")
    return AsfBone(
        name=b["name"],
        direction=direction / norm if norm > 0 else direction,
        length=float(b["length"]),
        axis=axis,
        axis_order=order,
        dofs=b.get("dofs", ()),
        line=b["line"],
    )


# --------------------------------------------------------------------------------------------
# Finding the skeleton


def asf_candidates(amc_path: str | Path) -> list[Path]:
    """Where :func:`find_asf` looks, in order.

    Names: the AMC's own stem, ``<tok0>_<tok1>`` (HDM05: ``HDM_bd_kick…_120.amc`` -> ``HDM_bd.asf``)
    and ``<tok0>`` (CMU: ``01_01.amc`` -> ``01.asf``), where tokens are split on ``_``; folders:
    the AMC's folder, then up to two parent folders.
    """
    amc_path = Path(amc_path)
    parts = amc_path.stem.split("_")
    names = [amc_path.stem]
    if len(parts) >= 2:
        names.append("_".join(parts[:2]))
    names.append(parts[0])
    names = list(dict.fromkeys(n for n in names if n))
    folders = [amc_path.parent, *list(amc_path.parent.parents)[:2]]
    return [d / f"{n}.asf" for d in folders for n in names]


def find_asf(amc_path: str | Path) -> Path:
    """The ASF skeleton file of an AMC file; MocapFormatError naming every place looked in."""
    candidates = asf_candidates(amc_path)
    for c in candidates:
        if c.is_file():
            return c
    raise MocapFormatError(
        amc_path,
        "no ASF skeleton found for this AMC file; looked for "
        + ", ".join(str(c) for c in candidates)
        + " (pass skeleton=path/to/file.asf)",
    )

