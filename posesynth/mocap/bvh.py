"""BVH (Biovision Hierarchy) reader.

Supported: any channel order per joint; position channels on any joint (where present they
replace the OFFSET's components as the joint's local translation, as on every joint of the
Bandai Namco files; components without a channel keep the OFFSET's value); End Sites; comment
lines (first non-space character ``#``); CRLF; tabs; ``Frame Time:`` / ``Frame time:``;
``Frames:`` in any case with optional spaces before the colon.

Conventions (column vectors, ``x_parent = R_local @ x_local + t_local``):

- Rotation channels compose in the order they are listed, intrinsically:
  ``Zrotation Xrotation Yrotation`` gives ``R_local = Rz @ Rx @ Ry`` (scipy's
  ``Rotation.from_euler("ZXY", ...)``, computed here by :func:`euler_to_matrix`).
- A joint's global rotation is ``R_parent_global @ R_local``; its position (origin) is
  ``p_parent + R_parent_global @ t_local``.
- An End Site becomes a joint ``<parent>_end`` with the parent's global rotation.  End Sites
  whose OFFSET is exactly zero (all of Bandai Namco's but 11 files') are left out: a
  zero-length bone carries no information.
- Lengths are multiplied by ``length_scale`` (metres per file unit).  When it is not given it is
  inferred from the rest skeleton's span (see :func:`infer_length_scale`).

The motion block is parsed with one ``numpy.loadtxt`` call; a slow line-by-line pass runs only to
explain a failure (which line, which frame, which joint).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from posesynth.mocap.motion import MocapFormatError, Motion, euler_to_matrix, last_line, parse_float, read_text

__all__ = ["read_bvh", "infer_length_scale"]

_CHANNEL_NAMES = {
    "xposition": "Xposition",
    "yposition": "Yposition",
    "zposition": "Zposition",
    "xrotation": "Xrotation",
    "yrotation": "Yrotation",
    "zrotation": "Zrotation",
}
_FRAMES_RE = re.compile(r"frames\s*:\s*(\S*)\s*(.*)", re.I)
_FRAME_TIME_RE = re.compile(r"frame\s*time\s*:\s*(\S*)\s*(.*)", re.I)


@dataclass
class _Node:
    name: str
    parent: int
    line: int
    is_end: bool = False
    offset: np.ndarray | None = None
    channels: list[str] = field(default_factory=list)
    first_column: int = 0  # column of its first channel in a frame line


def read_bvh(path: str | Path, *, length_scale: float | None = None) -> Motion:
    """Read a BVH file and run forward kinematics.

    Args:
        path: the .bvh file.
        length_scale: metres per file unit; ``None`` infers it (centimetres for Bandai Namco).

    Returns:
        A :class:`Motion` with ``positions`` (T, J, 3) in metres and ``rotations`` (T, J, 3, 3).

    Raises:
        MocapFormatError: the file is missing, not text, or not valid BVH; the message names
            the line (and the frame, for motion data).
    """
    path = Path(path)
    text = read_text(path, "BVH file")
    lines = text.split("\n")
    nodes, motion_line = _parse_hierarchy(path, lines)
    num_channels = sum(len(n.channels) for n in nodes)
    num_frames, frame_time, data_line = _parse_motion_header(path, lines, motion_line)
    data = _parse_motion_data(path, lines, data_line, nodes, num_channels, num_frames)

    kept = [j for j, n in enumerate(nodes) if not (n.is_end and not np.any(n.offset))]
    if length_scale is None:
        length_scale = infer_length_scale([n.offset for n in nodes], [n.parent for n in nodes])
    elif not (np.isfinite(length_scale) and length_scale > 0):
        raise ValueError(f"length_scale must be a positive number, got {length_scale!r}")
    positions, rotations = _forward_kinematics(nodes, data, num_frames)

    names: list[str] = []
    parents: list[int] = []
    new_index = {old: new for new, old in enumerate(kept)}
    for j in kept:
        n = nodes[j]
        name = n.name
        if n.is_end:
            base = f"{nodes[n.parent].name}_end"
            name, k = base, 2
            while name in names:
                name, k = f"{base}{k}", k + 1
        names.append(name)
        parents.append(new_index[n.parent] if n.parent >= 0 else -1)
    return Motion(
        path=path,
        format="bvh",
        joint_names=tuple(names),
        parents=tuple(parents),
        positions=positions[:, kept] * float(length_scale),
        rotations=rotations[:, kept],
        fps=_fps_from_frame_time(frame_time),
        length_scale=float(length_scale),
    )


def infer_length_scale(offsets, parents) -> float:
    """Guess metres per unit from a rest skeleton's span.

    The span is the longest path through the tree, summing bone (offset) lengths; the offset from
    a root to its only child is left out (a dummy root's offset places the body in the world,
    e.g. Bandai's ``joint_Root`` -> ``Hips``).  A human's span is about 1.5-2.5 body units, so:
    span > 400 -> millimetres (0.001), span > 4 -> centimetres (0.01), else metres (1.0).
    Inches (e.g. some CMU conversions) cannot be told from centimetres: pass ``length_scale``.

    Args:
        offsets: per joint, (3,) offset from its parent in file units.
        parents: per joint, parent index (parents first, roots -1).
    """
    n = len(parents)
    lengths = np.array([float(np.linalg.norm(o)) for o in offsets])
    num_children = np.bincount([p for p in parents if p >= 0], minlength=n)
    for j, p in enumerate(parents):
        if p >= 0 and parents[p] < 0 and num_children[p] == 1:
            lengths[j] = 0.0
    down = np.zeros(n)  # longest path from j down to a leaf
    best = 0.0
    top2 = np.zeros((n, 2))
    for j in range(n - 1, -1, -1):
        down[j] = top2[j, 0]
        best = max(best, top2[j, 0] + top2[j, 1])
        p = parents[j]
        if p >= 0:
            branch = down[j] + lengths[j]
            if branch > top2[p, 0]:
                top2[p] = (branch, top2[p, 0])
            elif branch > top2[p, 1]:
                top2[p, 1] = branch
    if best > 400.0:
        return 0.001
    if best > 4.0:
        return 0.01
    return 1.0


def _fps_from_frame_time(frame_time: float) -> float:
    fps = 1.0 / frame_time
    # Files store 1/30 as 0.0333333; report 30, not 30.00003 (but keep 29.97 as 29.97).
    if round(fps) > 0 and abs(fps - round(fps)) < 1e-4 * fps:
        return float(round(fps))
    return fps


def _parse_hierarchy(path: Path, lines: list[str]) -> tuple[list[_Node], int]:
    """Parse up to MOTION. Returns the nodes (parents first) and the 0-based MOTION line index."""
    nodes: list[_Node] = []
    stack: list[int] = []  # open nodes
    pending: int | None = None  # declared, waiting for '{'
    seen_hierarchy = False
    column = 0

    def fail(msg: str, i: int) -> MocapFormatError:
        return MocapFormatError(path, msg, line=i + 1)

    for i, raw in enumerate(lines):
        toks = raw.split()
        if not toks or toks[0].startswith("#"):
            continue
        key = toks[0].upper()
        if not seen_hierarchy:
            if key != "HIERARCHY":
                shown = raw.strip()[:40]
                raise fail(f"not a BVH file: expected 'HIERARCHY' first, found {shown!r}", i)
            seen_hierarchy = True
            if len(toks) > 1:
                raise fail(f"unexpected {toks[1]!r} after HIERARCHY", i)
            continue
        k = 0
        while k < len(toks):
            tok = toks[k]
            key = tok.upper()
            if pending is not None and tok != "{":
                raise fail(f"expected '{{' after {nodes[pending].name!r}, found {tok!r}", i)
            if key in ("ROOT", "JOINT"):
                rest = toks[k + 1 :]
                name_toks = rest[: rest.index("{")] if "{" in rest else rest
                if not name_toks:
                    raise fail(f"{tok} without a name", i)
                name = " ".join(name_toks)
                if key == "ROOT" and stack:
                    raise fail(f"ROOT {name!r} inside joint {nodes[stack[-1]].name!r}", i)
                if key == "JOINT" and not stack:
                    raise fail(f"JOINT {name!r} outside any ROOT (unbalanced braces?)", i)
                if stack and nodes[stack[-1]].is_end:
                    raise fail(f"JOINT {name!r} inside an End Site", i)
                if any(n.name == name and not n.is_end for n in nodes):
                    raise fail(f"duplicate joint name {name!r}", i)
                nodes.append(_Node(name=name, parent=stack[-1] if stack else -1, line=i + 1))
                pending = len(nodes) - 1
                k += 1 + len(name_toks)
            elif key == "END":
                if k + 1 >= len(toks) or toks[k + 1].upper() != "SITE":
                    raise fail("expected 'End Site'", i)
                if not stack:
                    raise fail("End Site outside any joint (unbalanced braces?)", i)
                parent = stack[-1]
                if nodes[parent].is_end:
                    raise fail("End Site inside an End Site", i)
                nodes.append(_Node(name=nodes[parent].name, parent=parent, line=i + 1, is_end=True))
                pending = len(nodes) - 1
                k += 2
            elif tok == "{":
                if pending is None:
                    raise fail("unexpected '{' (not after ROOT, JOINT or End Site)", i)
                stack.append(pending)
                pending = None
                k += 1
            elif tok == "}":
                if not stack:
                    raise fail("unbalanced braces: '}' without a matching '{'", i)
                node = nodes[stack.pop()]
                if node.offset is None:
                    what = "End Site" if node.is_end else f"joint {node.name!r}"
                    raise fail(f"{what} (line {node.line}) has no OFFSET", i)
                k += 1
            elif key == "OFFSET":
                if not stack:
                    raise fail("OFFSET outside any joint", i)
                node = nodes[stack[-1]]
                vals = toks[k + 1 : k + 4]
                vals = [v for v in vals if v not in ("{", "}")]
                if len(vals) != 3:
                    raise fail(f"OFFSET needs 3 numbers, found {len(vals)}", i)
                if node.offset is not None:
                    raise fail(f"second OFFSET for {node.name!r}", i)
                node.offset = np.array([parse_float(v, path, i + 1, "OFFSET") for v in vals])
                if not np.all(np.isfinite(node.offset)):
                    raise fail(f"non-finite OFFSET for {node.name!r}", i)
                k += 4
            elif key == "CHANNELS":
                if not stack:
                    raise fail("CHANNELS outside any joint", i)
                node = nodes[stack[-1]]
                if node.is_end:
                    raise fail("an End Site cannot have CHANNELS", i)
                if node.channels:
                    raise fail(f"second CHANNELS line for {node.name!r}", i)
                if k + 1 >= len(toks):
                    raise fail("CHANNELS without a count", i)
                try:
                    count = int(toks[k + 1])
                except ValueError:
                    raise fail(f"malformed channel count {toks[k + 1]!r}", i) from None
                listed = toks[k + 2 :]
                if count < 0 or len(listed) != count:
                    raise fail(
                        f"wrong channel count: CHANNELS declares {count} channels but lists "
                        f"{len(listed)} for joint {node.name!r}",
                        i,
                    )
                for ch in listed:
                    canon = _CHANNEL_NAMES.get(ch.lower())
                    if canon is None:
                        raise fail(
                            f"unknown channel name {ch!r} for joint {node.name!r} (expected "
                            f"{', '.join(_CHANNEL_NAMES.values())})",
                            i,
                        )
                    if canon in node.channels:
                        raise fail(f"channel {canon} listed twice for joint {node.name!r}", i)
                    node.channels.append(canon)
                node.first_column = column
                column += count
                k = len(toks)
            elif key == "MOTION":
                if k != 0 or len(toks) > 1:
                    raise fail("MOTION must be alone on its line", i)
                if pending is not None:
                    raise fail(f"expected '{{' after {nodes[pending].name!r}", i)
                if stack:
                    node = nodes[stack[-1]]
                    raise fail(
                        f"unbalanced braces: {len(stack)} '{{' not closed before MOTION "
                        f"(innermost: {node.name!r} opened at line {node.line})",
                        i,
                    )
                if not nodes:
                    raise fail("no ROOT in HIERARCHY", i)
                return nodes, i
            else:
                raise fail(f"unexpected {tok!r} in HIERARCHY", i)
    last = last_line(lines)
    if not seen_hierarchy:
        raise MocapFormatError(path, "not a BVH file: no 'HIERARCHY' found", line=last)
    if stack:
        node = nodes[stack[-1]]
        raise MocapFormatError(
            path,
            f"unbalanced braces: {len(stack)} '{{' never closed (innermost: {node.name!r} opened "
            f"at line {node.line}), and missing MOTION section",
            line=last,
        )
    raise MocapFormatError(path, "missing MOTION section", line=last)


def _next_content_line(lines: list[str], start: int) -> int:
    i = start
    while i < len(lines):
        s = lines[i].strip()
        if s and not s.startswith("#"):
            return i
        i += 1
    return i


def _parse_motion_header(path: Path, lines: list[str], motion_line: int) -> tuple[int, float, int]:
    """Parse ``Frames:`` and ``Frame Time:``.  Returns (frames, frame time, first data line index)."""
    i = _next_content_line(lines, motion_line + 1)
    m = _FRAMES_RE.fullmatch(lines[i].strip()) if i < len(lines) else None
    if m is None:
        found = repr(lines[i].strip()[:40]) if i < len(lines) else "end of file"
        raise MocapFormatError(path, f"expected 'Frames: N' after MOTION, found {found}", line=i + 1)
    try:
        num_frames = int(m.group(1))
    except ValueError:
        raise MocapFormatError(path, f"malformed frame count {m.group(1)!r}", line=i + 1) from None
    if m.group(2) or num_frames < 0:
        raise MocapFormatError(path, f"malformed frame count in {lines[i].strip()!r}", line=i + 1)
    if num_frames == 0:
        raise MocapFormatError(path, "Frames: declares 0 frames; the clip holds no motion", line=i + 1)
    j = _next_content_line(lines, i + 1)
    m = _FRAME_TIME_RE.fullmatch(lines[j].strip()) if j < len(lines) else None
    if m is None:
        found = repr(lines[j].strip()[:40]) if j < len(lines) else "end of file"
        raise MocapFormatError(path, f"expected 'Frame Time: seconds' after Frames, found {found}", line=j + 1)
    if m.group(2):
        raise MocapFormatError(path, f"malformed frame time in {lines[j].strip()!r}", line=j + 1)
    frame_time = parse_float(m.group(1), path, j + 1, "Frame Time")
    if not (np.isfinite(frame_time) and frame_time > 0):
        raise MocapFormatError(path, f"non-positive frame time {m.group(1)!r} (must be > 0 seconds)", line=j + 1)
    return num_frames, frame_time, j + 1


def _column_names(nodes: list[_Node]) -> list[tuple[str, str]]:
    return [(n.name, ch) for n in nodes for ch in n.channels]


def _parse_motion_data(
    path: Path, lines: list[str], start: int, nodes: list[_Node], num_channels: int, num_frames: int
) -> np.ndarray:
    """The motion block as a (T, C) float64 array, or a MocapFormatError saying what is wrong where."""
    body = lines[start:]
    block = "\n".join(body)
    if "#" in block:  # rare: drop comment lines so loadtxt never sees a block with no data
        block = "\n".join(ln for ln in body if not ln.lstrip().startswith("#"))
    if num_channels == 0:
        if block.split():
            raise MocapFormatError(path, "motion data found but no joint has CHANNELS", line=start + 1)
        return np.zeros((num_frames, 0))
    data: np.ndarray | None = None
    if block.strip():
        try:
            data = np.loadtxt(io.StringIO(block), dtype=np.float64, comments="#", ndmin=2)
        except ValueError:
            data = None
    if data is not None and data.shape == (num_frames, num_channels) and np.isfinite(data).all():
        return data
    _explain_bad_motion(path, lines, start, nodes, num_channels, num_frames)
    raise MocapFormatError(path, "could not read the motion data", line=start + 1)  # pragma: no cover


def _explain_bad_motion(
    path: Path, lines: list[str], start: int, nodes: list[_Node], num_channels: int, num_frames: int
) -> None:
    """Slow pass over the motion block that raises the precise error (only run on bad input)."""
    columns = _column_names(nodes)
    data_lines = []
    for i in range(start, len(lines)):
        toks = lines[i].split("#", 1)[0].split()
        if toks:
            data_lines.append((i, toks))
    for frame, (i, toks) in enumerate(data_lines):
        if frame >= num_frames:
            raise MocapFormatError(
                path,
                f"more motion lines than declared: Frames: declares {num_frames} frames, found "
                f"{len(data_lines)}",
                line=i + 1,
            )
        if len(toks) != num_channels:
            if frame == len(data_lines) - 1 and len(toks) < num_channels and frame < num_frames:
                raise MocapFormatError(
                    path,
                    f"truncated file: Frames: declares {num_frames} frames, found {frame} complete "
                    f"(the last line holds {len(toks)} of {num_channels} values)",
                    line=i + 1,
                    frame=frame,
                )
            raise MocapFormatError(
                path,
                f"expected {num_channels} values per frame, found {len(toks)}",
                line=i + 1,
                frame=frame,
            )
        for c, tok in enumerate(toks):
            joint, ch = columns[c]
            what = f"channel {ch} of joint {joint!r}"
            value = parse_float(tok, path, i + 1, what, frame)
            if not np.isfinite(value):
                raise MocapFormatError(
                    path, f"non-finite value {tok!r} in {what}", line=i + 1, frame=frame
                )
    if len(data_lines) < num_frames:
        raise MocapFormatError(
            path,
            f"truncated file: Frames: declares {num_frames} frames, found {len(data_lines)}",
            line=last_line(lines),
        )


def _forward_kinematics(nodes: list[_Node], data: np.ndarray, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Global positions (T, N, 3) in file units and rotations (T, N, 3, 3) of every node."""
    T = num_frames
    pos = np.empty((T, len(nodes), 3))
    rot = np.empty((T, len(nodes), 3, 3))
    for j, n in enumerate(nodes):
        offset = n.offset
        assert offset is not None
        t_local = offset[None, :]  # (1, 3) or (T, 3)
        r_local = None  # (T, 3, 3), None for identity
        if n.channels:
            cols = {ch: n.first_column + c for c, ch in enumerate(n.channels)}
            pos_axes = [a for a, ch in enumerate(("Xposition", "Yposition", "Zposition")) if ch in cols]
            if pos_axes:
                t_local = np.repeat(t_local, T, axis=0)
                for a in pos_axes:
                    t_local[:, a] = data[:, cols["XYZ"[a] + "position"]]
            rot_chs = [ch for ch in n.channels if ch.endswith("rotation")]
            if rot_chs:
                seq = "".join(ch[0] for ch in rot_chs)  # uppercase: intrinsic, as listed
                angles = data[:, [cols[ch] for ch in rot_chs]]
                r_local = euler_to_matrix(seq, angles, degrees=True)
        p = n.parent
        if p < 0:
            pos[:, j] = t_local
            rot[:, j] = np.eye(3) if r_local is None else r_local
        else:
            pos[:, j] = pos[:, p] + np.einsum("tij,tj->ti", rot[:, p], np.broadcast_to(t_local, (T, 3)))
            rot[:, j] = rot[:, p] if r_local is None else rot[:, p] @ r_local
    return pos, rot
