"""Acclaim AMC motion files (HDM05, the CMU database): reading them and their forward kinematics.

The skeleton comes from an ASF file (:mod:`posesynth.mocap.asf`).

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

import re
from pathlib import Path

import numpy as np

from posesynth.mocap.asf import AsfSkeleton, find_asf, read_asf
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

__all__ = ["DEFAULT_AMC_FPS", "read_amc"]

DEFAULT_AMC_FPS = 120.0  # AMC files hold no frame rate; VICON/CMU/HDM05 capture at 120 fps
_INCH = 0.0254
_ALPHA = np.zeros(256, dtype=bool)
_ALPHA[list(range(65, 91)) + list(range(97, 123)) + [95]] = True  # A-Z a-z _
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
