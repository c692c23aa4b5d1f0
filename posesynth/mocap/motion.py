"""The result of reading a mocap file (:class:`Motion`) and the one error the readers raise.

Glossary of shapes (``T`` frames, ``J`` joints):

- ``positions``  (T, J, 3): global joint positions in metres, in the file's world frame.
- ``rotations``  (T, J, 3, 3): global rotation of each joint, acting on column vectors.

Also here: the small text helpers the BVH and ASF/AMC readers share (reading a file as
text with clear errors, splitting a block of text into tokens with their line numbers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from posesynth.errors import PosesynthError

__all__ = ["Motion", "MocapFormatError"]


class MocapFormatError(PosesynthError, ValueError):
    """A mocap file could not be read.

    The message names the file and, when known, the 1-based line and the 0-based frame:
    ``path/to/file.bvh:123: expected 132 values per frame, found 120 (frame 57)``.

    Attributes:
        path: the file that is at fault (a ``Path``).
        line: 1-based line number in that file, or ``None``.
        frame: 0-based frame index, or ``None``.
        reason: the message without the location.
    """

    def __init__(
        self,
        path: str | Path,
        reason: str,
        *,
        line: int | None = None,
        frame: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.reason = reason
        self.line = line
        self.frame = frame
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        text = f"{where}: {reason}"
        if frame is not None:
            text += f" (frame {frame})"
        super().__init__(text)

    def __reduce__(self):  # keep the attributes through pickling (multiprocessing)
        return (_rebuild_error, (str(self.path), self.reason, self.line, self.frame))


def _rebuild_error(path: str, reason: str, line: int | None, frame: int | None) -> MocapFormatError:
    return MocapFormatError(path, reason, line=line, frame=frame)


@dataclass(frozen=True, eq=False)
class Motion:
    """One mocap clip after forward kinematics.

    Attributes:
        path: the motion file (.bvh or .amc) it was read from.
        format: ``"bvh"`` or ``"amc"``.
        joint_names: (J,) names; for BVH, End Sites appear as ``<parent>_end``; for ASF/AMC,
            ``root`` then every bone in hierarchy (depth-first) order.
        parents: (J,) parent index of each joint, parents before children, roots -1.
        positions: (T, J, 3) float64 global joint positions in metres (file's world frame).
            BVH: the joint's origin.  ASF/AMC: the END point of the bone (the root: its position).
        rotations: (T, J, 3, 3) float64 global rotation of each joint.  Both formats give the
            identity for every joint in the file's zero pose (BVH: all channels zero;
            ASF/AMC: all dofs zero), so ``rotations[t, j] @ rest_offset`` poses a bone.
        fps: frames per second.
        length_scale: metres per file length unit that was applied (given or inferred).
    """

    path: Path
    format: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    positions: np.ndarray
    rotations: np.ndarray
    fps: float
    length_scale: float = 1.0
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        j = len(self.joint_names)
        t = self.positions.shape[0] if self.positions.ndim == 3 else -1
        if self.positions.shape != (t, j, 3) or self.rotations.shape != (t, j, 3, 3):
            raise ValueError(
                f"Motion shapes disagree: {j} joints, positions {self.positions.shape}, "
                f"rotations {self.rotations.shape}"
            )
        if len(self.parents) != j or any(not (-1 <= p < i) for i, p in enumerate(self.parents)):
            raise ValueError(f"parents must list a parent before each child: {self.parents}")
        object.__setattr__(self, "_index", {n: i for i, n in enumerate(self.joint_names)})

    @property
    def num_frames(self) -> int:
        """T, the number of frames."""
        return int(self.positions.shape[0])

    @property
    def num_joints(self) -> int:
        """J, the number of joints."""
        return len(self.joint_names)

    @property
    def duration(self) -> float:
        """Length of the clip in seconds (``num_frames / fps``)."""
        return self.num_frames / self.fps

    def joint(self, name: str) -> int:
        """Index of the joint called ``name``; a :class:`MocapFormatError` listing the names if absent."""
        try:
            return self._index[name]
        except KeyError:
            raise MocapFormatError(
                self.path, f"no joint named {name!r}; joints are: {', '.join(self.joint_names)}"
            ) from None

    def __repr__(self) -> str:
        return (
            f"Motion(path={str(self.path)!r}, format={self.format!r}, frames={self.num_frames}, "
            f"joints={self.num_joints}, fps={self.fps:g}, length_scale={self.length_scale:g})"
        )


# --------------------------------------------------------------------------------------
# Shared text helpers for the readers.

# Control bytes that do not occur in a text file (everything below 0x20 except \t \n \f \r, and DEL).
_CONTROL = bytes([b for b in range(32) if b not in (9, 10, 12, 13)] + [127])


def read_text(path: Path, what: str = "file") -> str:
    """Read ``path`` as text with newlines normalised to ``\\n``; MocapFormatError if it cannot be.

    Non-UTF-8 bytes (HDM05 AMC headers hold Latin-1 comments) are read as Latin-1.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MocapFormatError(path, f"{what} not found") from None
    except IsADirectoryError:
        raise MocapFormatError(path, f"{what} is a directory, not a file") from None
    except OSError as e:
        raise MocapFormatError(path, f"cannot read {what}: {e.strerror or e}") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with a byte-order mark
        try:
            data = data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError:
            raise MocapFormatError(path, f"not a text {what} (bad UTF-16)") from None
    if not data.strip():
        raise MocapFormatError(path, f"empty {what}")
    if b"\x00" in data or len(data) - len(data.translate(None, _CONTROL)) > max(8, len(data) // 1000):
        raise MocapFormatError(path, f"not a text {what} (binary data found)")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def last_line(lines: list[str]) -> int:
    """1-based number of the last line of ``text.split("\\n")`` (a final newline ends it)."""
    return max(1, len(lines) - 1 if lines and lines[-1] == "" else len(lines))


_WS = np.zeros(256, dtype=bool)
_WS[[9, 10, 11, 12, 13, 32]] = True  # exactly the bytes that bytes.split() splits on


def tokenize(block: bytes) -> tuple[list[bytes], np.ndarray, np.ndarray, np.ndarray]:
    """Split ``block`` on ASCII whitespace, vectorised.

    Returns ``(tokens, token_line, line_count, first_byte)``: the tokens (as ``bytes.split()``
    gives them), the 0-based line of each token within ``block`` (N,), the number of tokens on
    each line (L,) where L is the number of lines in ``block``, and each token's first byte (N,).
    """
    tokens = block.split()
    u8 = np.frombuffer(block, dtype=np.uint8)
    ws = _WS[u8]
    start = ~ws
    start[1:] &= ws[:-1]
    starts = np.flatnonzero(start)
    newline_before = np.cumsum(u8 == 10)
    token_line = newline_before[starts] if len(starts) else np.zeros(0, dtype=np.int64)
    n_lines = int(newline_before[-1]) + 1 if len(u8) else 1
    line_count = np.bincount(token_line, minlength=n_lines)
    assert len(tokens) == len(starts)
    return tokens, token_line, line_count, u8[starts]


_FLOAT_RE = re.compile(r"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|nan|inf|infinity)", re.I)


def parse_float(token: str, path: Path, line: int, what: str, frame: int | None = None) -> float:
    """``float(token)`` or a MocapFormatError naming ``what`` and the line."""
    if _FLOAT_RE.fullmatch(token) is None:
        raise MocapFormatError(path, f"malformed number {token!r} in {what}", line=line, frame=frame)
    return float(token)


def floats_from_tokens(tokens: np.ndarray) -> np.ndarray | None:
    """Parse a (N,) byte-string array as float64 in one call; ``None`` if any is not a number."""
    try:
        return tokens.astype(np.float64)
    except (ValueError, OverflowError):
        return None


def first_bad_float(tokens: list[bytes]) -> int:
    """Index of the first token that is not a number (slow; for error messages only)."""
    for i, tok in enumerate(tokens):
        if _FLOAT_RE.fullmatch(tok.decode("latin-1")) is None:
            return i
    return -1


def euler_to_matrix(seq: str, angles: np.ndarray, degrees: bool = True) -> np.ndarray:
    """Rotation matrices from Euler angles, like ``Rotation.from_euler(seq, angles).as_matrix()``.

    ``seq`` uppercase (``"ZXY"``) is intrinsic: ``R = Rz @ Rx @ Ry``; lowercase (``"xyz"``) is
    extrinsic: ``R = Rz @ Ry @ Rx`` (the first listed is applied first, about fixed axes).
    Faster than scipy for the (T, k) arrays the readers have.

    Args:
        seq: 1-3 axis letters, all upper or all lower case.
        angles: (..., len(seq)) angles.

    Returns:
        (..., 3, 3) rotation matrices.
    """
    angles = np.asarray(angles, dtype=np.float64)
    if degrees:
        angles = np.deg2rad(angles)
    mats = [_elementary(axis.lower(), angles[..., k]) for k, axis in enumerate(seq)]
    if seq.islower():
        mats = mats[::-1]
    out = mats[0]
    for m in mats[1:]:
        out = out @ m
    return out


def _elementary(axis: str, theta: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation by ``theta`` (...,) radians about ``axis`` (right-handed)."""
    c, s = np.cos(theta), np.sin(theta)
    m = np.zeros(theta.shape + (3, 3))
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    k = 3 - i - j
    m[..., k, k] = 1.0
    m[..., i, i] = c
    m[..., j, j] = c
    m[..., i, j] = -s
    m[..., j, i] = s
    return m
