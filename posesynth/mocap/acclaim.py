"""Acclaim ASF (skeleton) + AMC (motion) reader, as used by HDM05 and the CMU database.

Forward kinematics (column vectors; lowercase, i.e. extrinsic, Euler sequences):

- A bone's ``axis a1 a2 a3 ORDER`` gives ``C``: the rotations about the axes named by ORDER, each
  angle taken in turn, applied first to last about fixed axes.  ``axis 0 0 20 XYZ`` means
  ``C = Rz(20) @ Ry(0) @ Rx(0)``.
- Its dofs, in the order the ``dof`` line lists them and the AMC gives them, compose the same way:
  ``dof rx ry rz`` with values ``(a, b, c)`` gives ``Rdof = Rz(c) @ Ry(b) @ Rx(a)``;
  ``dof rx rz`` gives ``Rz @ Rx``.
- ``R_bone = R_parent @ C @ Rdof @ C^-1`` and the bone's END point is
  ``p_bone = p_parent_end + R_bone @ direction * length`` (CalciferZh/AMCParser; the HDM05
  README).  ``R_bone`` is identity in the rest pose: it is the bone's rotation from rest,
  in world axes; the bone's own local axes are ``R_bone @ C``.
- Root: its AMC values follow ``:root order`` (e.g. ``TX TY TZ RX RY RZ``); rotations compose in
  that order about fixed axes.  The ASF's pre-set ``position`` is added to the translation and its
  ``orientation`` (composed in ``axis`` order) is applied before the motion:
  ``R_root = R_orientation @ Rdof`` (VICON writes zeros for both).
- Lengths: ``:units length L`` means one unit is 1/L inch, so metres = value * 0.0254 / L; AMC root
  translations use the same unit.  Angles: ``:units angle deg|rad`` in the ASF, overridden for
  AMC values by an AMC ``:DEGREES`` / ``:RADIANS`` header line.
- Bones without a ``dof`` line have no AMC data and stay fixed relative to their parent.

The AMC body is tokenised once and checked with array operations (one pass over the bytes); no
Python loop runs per frame.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posesynth.mocap.motion import (
    MocapFormatError,
    Motion,
    euler_to_matrix,
    first_bad_float,
    floats_from_tokens,
    last_line,
    parse_float,
    read_text,
    tokenize,
)

__all__ = ["AsfBone", "AsfSkeleton", "read_asf", "read_amc", "find_asf", "DEFAULT_AMC_FPS"]

DEFAULT_AMC_FPS = 120.0  # AMC files hold no frame rate; VICON/CMU/HDM05 capture at 120 fps
_INCH = 0.0254
_ROOT_TOKENS = ("TX", "TY", "TZ", "RX", "RY", "RZ")
_DOFS = ("rx", "ry", "rz")
_ALPHA = np.zeros(256, dtype=bool)
_ALPHA[list(range(65, 91)) + list(range(97, 123)) + [95]] = True  # A-Z a-z _


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


# --------------------------------------------------------------------------------------------
# ASF


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


# --------------------------------------------------------------------------------------------
# AMC

_SAMPLES_RE = re.compile(r":samples-per-second\s+(\S+)", re.I)


def read_amc(
    path: str | Path,
    skeleton: str | Path | AsfSkeleton | None = None,
    *,
    length_scale: float | None = None,
    fps: float | None = None,
) -> Motion:
    """Read an AMC motion with its ASF skeleton and run forward kinematics.

    Args:
        path: the .amc file.
        skeleton: the .asf file (or a parsed :class:`AsfSkeleton`); ``None`` finds it
            (:func:`find_asf`).
        length_scale: metres per ASF length unit; ``None`` uses the ASF's ``:units length``.
        fps: frame rate; ``None`` uses an AMC ``:SAMPLES-PER-SECOND`` line if any, else 120.

    Returns:
        A :class:`Motion`: joints ``root`` + bones in hierarchy order, ``positions`` (T, J, 3)
        bone END points in metres, ``rotations`` (T, J, 3, 3) ``R_bone``.

    Raises:
        MocapFormatError: a missing/bad skeleton or motion file, naming the file, line and frame.
    """
    path = Path(path)
    if isinstance(skeleton, AsfSkeleton):
        asf = skeleton
    else:
        asf = read_asf(find_asf(path) if skeleton is None else Path(skeleton))
    text = read_text(path, "AMC file")
    lines = text.split("\n")

    degrees = asf.degrees
    start = 0
    while start < len(lines):
        s = lines[start].strip()
        if s and not s.startswith(("#", ":")):
            break
        low = s.lower()
        if low == ":degrees":
            degrees = True
        elif low == ":radians":
            degrees = False
        elif fps is None and (m := _SAMPLES_RE.fullmatch(s)) is not None:
            fps = parse_float(m.group(1), path, start + 1, "SAMPLES-PER-SECOND")
        start += 1
    if fps is None:
        fps = DEFAULT_AMC_FPS
    if not (np.isfinite(fps) and fps > 0):
        raise MocapFormatError(path, f"frame rate must be > 0, got {fps}")
    if length_scale is None:
        length_scale = _INCH / asf.length_unit
    elif not (np.isfinite(length_scale) and length_scale > 0):
        raise ValueError(f"length_scale must be a positive number, got {length_scale!r}")

    values = _parse_amc_body(path, lines, start, asf)
    positions, rotations = _forward_kinematics(asf, values, degrees, float(length_scale))
    return Motion(
        path=path,
        format="amc",
        joint_names=asf.joint_names,
        parents=asf.parents,
        positions=positions,
        rotations=rotations,
        fps=float(fps),
        length_scale=float(length_scale),
    )


def _parse_amc_body(path: Path, lines: list[str], start: int, asf: AsfSkeleton) -> list[np.ndarray]:
    """Per joint (root first), its AMC values (T, n_values); (T, 0) for fixed bones."""
    text = "\n".join(lines[start:])
    if "#" in text:  # rare: cut comments, keeping the line numbers
        text = "\n".join(ln.split("#", 1)[0] for ln in lines[start:])
    block = text.encode("utf-8")
    tokens, token_line, line_count, first_byte = tokenize(block)
    if not tokens:
        raise MocapFormatError(path, "no frames in AMC file", line=last_line(lines))

    def file_line(block_line) -> int:
        return int(block_line) + start + 1

    n_tok = len(tokens)
    first_on_line = np.ones(n_tok, dtype=bool)
    first_on_line[1:] = token_line[1:] != token_line[:-1]
    head = np.flatnonzero(first_on_line)  # (L,) first token of each content line
    head_line = token_line[head]  # block line of each content line
    n_on_line = line_count[head_line]
    is_bone = _ALPHA[first_byte[head]]
    is_marker = ~is_bone

    if not is_marker[0]:
        raise MocapFormatError(
            path, "expected a frame number before the first bone line", line=file_line(head_line[0])
        )
    bad = np.flatnonzero(is_marker & (n_on_line != 1))
    if len(bad):
        i = bad[0]
        raise MocapFormatError(
            path,
            "expected a frame number alone on its line or '<bone> <values...>' "
            f"(line starts with {tokens[head[i]].decode('latin-1')!r})",
            line=file_line(head_line[i]),
        )
    tok_arr = np.array(tokens, dtype=np.bytes_)
    frame_of_line = np.cumsum(is_marker) - 1  # (L,)
    num_frames = int(is_marker.sum())
    marker_lines = head_line[is_marker]
    try:
        numbers = tok_arr[head[is_marker]].astype(np.int64)
    except (ValueError, OverflowError):
        k = next((i for i, t in enumerate(tok_arr[head[is_marker]]) if not _is_int(t)), 0)
        raise MocapFormatError(
            path, f"malformed frame number {tokens[head[is_marker][k]].decode('latin-1')!r}",
            line=file_line(marker_lines[k]), frame=k,
        ) from None
    jumps = np.flatnonzero(np.diff(numbers) != 1)
    if len(jumps):
        k = int(jumps[0]) + 1
        raise MocapFormatError(
            path, f"frame number {numbers[k]} follows {numbers[k - 1]} (expected {numbers[k - 1] + 1})",
            line=file_line(marker_lines[k]), frame=k,
        )

    # Bone lines: which joint each one is.
    bone_rows = np.flatnonzero(is_bone)
    names = tok_arr[head[bone_rows]]
    uniq, inverse = np.unique(names, return_inverse=True)
    index = {n: j for j, n in enumerate(asf.joint_names)}
    lut = np.array([index.get(name.decode("latin-1"), -1) for name in uniq], dtype=np.int64)
    joint = lut[inverse.reshape(-1)]  # (B,) joint of each bone line
    if (lut < 0).any():
        row = bone_rows[np.flatnonzero(joint < 0)[0]]  # the first unknown bone in the file
        raise MocapFormatError(
            path,
            f"unknown bone {tokens[head[row]].decode('latin-1')!r} (not in skeleton {asf.path})",
            line=file_line(head_line[row]),
            frame=int(frame_of_line[row]),
        )
    frame = frame_of_line[bone_rows]
    n_dof = np.array([len(asf.root_order)] + [len(b.dofs) for b in asf.bones])
    n_vals = n_on_line[bone_rows] - 1
    wrong = np.flatnonzero(n_vals != n_dof[joint])
    if len(wrong):
        r = wrong[0]
        name = asf.joint_names[joint[r]]
        raise MocapFormatError(
            path,
            f"bone {name!r} has {n_dof[joint[r]]} dofs in the ASF but this line holds {n_vals[r]} values",
            line=file_line(head_line[bone_rows[r]]),
            frame=int(frame[r]),
        )
    J = len(asf.joint_names)
    counts = np.bincount(frame * J + joint, minlength=num_frames * J).reshape(num_frames, J)
    needed = n_dof > 0
    dup = np.argwhere(counts > 1)
    if len(dup):
        f, j = dup[0]
        rows = bone_rows[(frame == f) & (joint == j)]
        raise MocapFormatError(
            path, f"bone {asf.joint_names[j]!r} appears twice in one frame",
            line=file_line(head_line[rows[1]]), frame=int(f),
        )
    missing = np.argwhere((counts == 0) & needed[None, :])
    if len(missing):
        f, j = missing[0]
        truncated = f == num_frames - 1
        raise MocapFormatError(
            path,
            f"no data for bone {asf.joint_names[j]!r} in this frame"
            + (" (truncated file?)" if truncated else ""),
            line=file_line(marker_lines[f]),
            frame=int(f),
        )

    # Values: every token that is not the first on its line, in file order.
    value_idx = np.flatnonzero(~first_on_line)
    vals = floats_from_tokens(tok_arr[value_idx])
    if vals is None or not np.all(np.isfinite(vals)):
        if vals is None:
            k = max(0, first_bad_float(list(tok_arr[value_idx])))
            problem = f"malformed number {tokens[value_idx[k]].decode('latin-1')!r}"
        else:
            k = int(np.flatnonzero(~np.isfinite(vals))[0])
            problem = f"non-finite value {tokens[value_idx[k]].decode('latin-1')!r}"
        row = np.searchsorted(head, value_idx[k], side="right") - 1  # content line of the token
        r = np.searchsorted(bone_rows, row)
        raise MocapFormatError(
            path,
            f"{problem} for bone {asf.joint_names[joint[r]]!r}",
            line=file_line(head_line[row]),
            frame=int(frame_of_line[row]),
        )
    first_val = np.concatenate(([0], np.cumsum(n_vals)[:-1]))  # (B,) offset of each line's values
    out = []
    for j in range(J):
        k = int(n_dof[j])
        if k == 0:
            out.append(np.zeros((num_frames, 0)))
            continue
        rows = np.flatnonzero(joint == j)  # one per frame, in frame order (checked above)
        out.append(vals[first_val[rows][:, None] + np.arange(k)])
    return out


def _is_int(token: bytes) -> bool:
    try:
        return abs(int(token)) < 2**62
    except ValueError:
        return False


def _forward_kinematics(
    asf: AsfSkeleton, values: list[np.ndarray], degrees: bool, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Global positions (T, J, 3) in metres and rotations (T, J, 3, 3) of root + bones."""
    T = values[0].shape[0]
    J = len(asf.joint_names)
    pos = np.empty((T, J, 3))
    rot = np.empty((T, J, 3, 3))

    root = values[0]
    col = {tok: c for c, tok in enumerate(asf.root_order)}
    trans = np.broadcast_to(asf.root_position, (T, 3)).copy()
    for a, tok in enumerate(("TX", "TY", "TZ")):
        if tok in col:
            trans[:, a] += root[:, col[tok]]
    pos[:, 0] = trans * scale
    rot_toks = [t for t in asf.root_order if t.startswith("R")]
    r = np.broadcast_to(np.eye(3), (T, 3, 3))
    if rot_toks:
        seq = "".join(t[1].lower() for t in rot_toks)
        r = euler_to_matrix(seq, root[:, [col[t] for t in rot_toks]], degrees=degrees)
    if np.any(asf.root_orientation):
        r = euler_to_matrix(asf.root_axis.lower(), asf.root_orientation, degrees=asf.degrees) @ r
    rot[:, 0] = r

    for j, bone in enumerate(asf.bones, start=1):
        p = asf.parents[j]
        if bone.dofs:
            C = euler_to_matrix(bone.axis_order.lower(), bone.axis, degrees=asf.degrees)
            seq = "".join(d[1] for d in bone.dofs)
            Rdof = euler_to_matrix(seq, values[j], degrees=degrees)
            rot[:, j] = rot[:, p] @ (C @ Rdof @ C.T)
        else:
            rot[:, j] = rot[:, p]
        pos[:, j] = pos[:, p] + rot[:, j] @ (bone.direction * (bone.length * scale))
    return pos, rot
