"""Property tests of the BVH reader against a slow, independent reference.

Random small skeletons with random channel orders (position channels on some joints, rotation
channels in any order, interleaved), random End Sites and random angles are written as BVH text
in random styles (CRLF, comments, tabs, either ``Frame Time`` spelling, ``FRAMES :``), read back,
and compared with a per-frame forward kinematics that composes explicit elementary rotation
matrices.  A second property feeds corrupted files and checks that only MocapFormatError escapes.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posesynth.mocap import MocapFormatError, infer_length_scale, read_bvh, read_motion
from posesynth.mocap.motion import euler_to_matrix

FIXTURES = Path(__file__).parent / "fixtures"


def rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


ELEMENTARY = {"X": rot_x, "Y": rot_y, "Z": rot_z}


@dataclass
class Joint:
    name: str
    parent: int
    offset: tuple[float, float, float]
    channels: list[str]
    end_site: tuple[float, float, float] | None  # written only on leaves


finite = st.floats(min_value=-100, max_value=100, allow_nan=False, allow_infinity=False)
angle = st.floats(min_value=-360, max_value=360, allow_nan=False, allow_infinity=False)
offset3 = st.tuples(finite, finite, finite)


@st.composite
def skeletons(draw) -> list[Joint]:
    n = draw(st.integers(1, 6))
    joints = []
    for i in range(n):
        parent = -1 if i == 0 else draw(st.integers(0, i - 1))
        pos = draw(st.lists(st.sampled_from(["Xposition", "Yposition", "Zposition"]), unique=True, max_size=3))
        rot = draw(st.lists(st.sampled_from(["Xrotation", "Yrotation", "Zrotation"]), unique=True, max_size=3))
        channels = draw(st.permutations(pos + rot))
        end = draw(st.one_of(st.none(), st.just((0.0, 0.0, 0.0)), offset3))
        joints.append(Joint(f"j{i}", parent, draw(offset3), list(channels), end))
    return joints


@dataclass
class Style:
    newline: str
    indent: str
    comments: bool
    frame_time_word: str
    frames_word: str
    brace_on_joint_line: bool


styles = st.builds(
    Style,
    newline=st.sampled_from(["\n", "\r\n"]),
    indent=st.sampled_from(["  ", "\t", "    "]),
    comments=st.booleans(),
    frame_time_word=st.sampled_from(["Frame Time:", "Frame time:", "frame time :"]),
    frames_word=st.sampled_from(["Frames:", "FRAMES :", "frames:"]),
    brace_on_joint_line=st.booleans(),
)


def children_of(joints: list[Joint], i: int) -> list[int]:
    return [k for k, j in enumerate(joints) if j.parent == i]


def depth_first(joints: list[Joint], i: int = 0) -> list[int]:
    return [i] + [k for c in children_of(joints, i) for k in depth_first(joints, c)]


def write_bvh(joints: list[Joint], frames: np.ndarray, style: Style, frame_time: float) -> tuple[str, list[int]]:
    """BVH text and the order in which joints are written (depth first)."""
    out: list[str] = []
    order: list[int] = []

    def emit(depth: int, text: str) -> None:
        out.append(style.indent * depth + text)
        if style.comments and len(out) % 3 == 0:
            out.append(style.indent * depth + "# a comment line { } CHANNELS 9")

    def fmt(v) -> str:
        return " ".join(repr(float(x)) for x in v)

    def write(i: int, depth: int) -> None:
        j = joints[i]
        order.append(i)
        head = ("ROOT " if j.parent < 0 else "JOINT ") + j.name
        if style.brace_on_joint_line:
            emit(depth, head + " {")
        else:
            emit(depth, head)
            emit(depth, "{")
        emit(depth + 1, "OFFSET " + fmt(j.offset))
        if j.channels:
            emit(depth + 1, f"CHANNELS {len(j.channels)} " + " ".join(j.channels))
        kids = children_of(joints, i)
        for k in kids:
            write(k, depth + 1)
        if not kids and j.end_site is not None:
            emit(depth + 1, "End Site")
            emit(depth + 1, "{")
            emit(depth + 2, "OFFSET " + fmt(j.end_site))
            emit(depth + 1, "}")
        emit(depth, "}")

    emit(0, "HIERARCHY")
    write(0, 0)
    out.append("MOTION")
    out.append(f"{style.frames_word}\t{frames.shape[0]}")
    out.append(f"{style.frame_time_word} {frame_time!r}")
    for t, row in enumerate(frames):
        out.append(style.indent + fmt(row))
        if style.comments and t == 0:
            out.append("# comment inside the motion block")
    return style.newline.join(out) + style.newline, order


def reference_fk(joints: list[Joint], order: list[int], frames: np.ndarray):
    """Per-frame, per-joint FK: names, positions (T, J, 3), rotations (T, J, 3, 3)."""
    columns = {}
    c = 0
    for i in order:
        for ch in joints[i].channels:
            columns[(i, ch)] = c
            c += 1
    names: list[str] = []
    rows_p, rows_r = [], []
    for t in range(frames.shape[0]):
        gp: dict[int, np.ndarray] = {}
        gr: dict[int, np.ndarray] = {}
        pos_t, rot_t = [], []
        for i in order:
            j = joints[i]
            trans = list(j.offset)
            R = np.eye(3)
            for ch in j.channels:
                v = frames[t, columns[(i, ch)]]
                if ch.endswith("position"):
                    trans["XYZ".index(ch[0])] = v
                else:
                    R = R @ ELEMENTARY[ch[0]](math.radians(v))
            if j.parent < 0:
                gp[i], gr[i] = np.array(trans), R
            else:
                gp[i] = gp[j.parent] + gr[j.parent] @ np.array(trans)
                gr[i] = gr[j.parent] @ R
            pos_t.append(gp[i])
            rot_t.append(gr[i])
            if t == 0:
                names.append(j.name)
            if not children_of(joints, i) and j.end_site is not None and any(j.end_site):
                pos_t.append(gp[i] + gr[i] @ np.array(j.end_site))
                rot_t.append(gr[i])
                if t == 0:
                    names.append(j.name + "_end")
        rows_p.append(pos_t)
        rows_r.append(rot_t)
    return names, np.array(rows_p), np.array(rows_r)


@st.composite
def clips(draw):
    joints = draw(skeletons())
    n_channels = sum(len(j.channels) for j in joints)
    T = draw(st.integers(1, 4))
    values = [
        [draw(angle) if ch.endswith("rotation") else draw(finite) for j in joints for ch in j.channels]
        for _ in range(T)
    ]
    frames = np.array(values, dtype=float).reshape(T, n_channels)
    style = draw(styles)
    frame_time = draw(st.sampled_from([1 / 30, 1 / 120, 0.0333333, 0.04, 0.01]))
    return joints, frames, style, frame_time


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clips())
def test_bvh_matches_reference_fk(clip) -> None:
    joints, frames, style, frame_time = clip
    # The file lists joints depth first; its frame lines hold their channels in that order.
    order = depth_first(joints)
    by_joint = {}
    c = 0
    for i, j in enumerate(joints):
        by_joint[i] = list(range(c, c + len(j.channels)))
        c += len(j.channels)
    frames = frames[:, [c for i in order for c in by_joint[i]]]
    text, written = write_bvh(joints, frames, style, frame_time)
    assert written == order
    names, ref_pos, ref_rot = reference_fk(joints, order, frames)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "clip.bvh"
        path.write_bytes(text.encode())
        m = read_motion(path, length_scale=1.0)
    assert m.joint_names == tuple(names)
    assert m.num_frames == frames.shape[0]
    assert m.fps == pytest.approx(1 / frame_time, rel=1e-5)
    np.testing.assert_allclose(m.positions, ref_pos, atol=1e-9, rtol=1e-12)
    np.testing.assert_allclose(m.rotations, ref_rot, atol=1e-12)
    # Parents: a joint's written parent; an End Site's parent is the joint it closes.
    expected_parents = []
    for name in names:
        if name.endswith("_end"):
            expected_parents.append(name.removesuffix("_end"))
        else:
            parent = joints[int(name[1:])].parent
            expected_parents.append(joints[parent].name if parent >= 0 else None)
    assert [m.joint_names[p] if p >= 0 else None for p in m.parents] == expected_parents


@settings(max_examples=50, deadline=None)
@given(seq=st.text(alphabet="XYZ", min_size=1, max_size=3), data=st.data())
def test_euler_to_matrix_matches_explicit_products(seq: str, data) -> None:
    angles = np.array(data.draw(st.lists(angle, min_size=len(seq), max_size=len(seq))))
    expected = np.eye(3)
    for axis, a in zip(seq, angles):
        expected = expected @ ELEMENTARY[axis](math.radians(a))
    np.testing.assert_allclose(euler_to_matrix(seq, angles), expected, atol=1e-12)
    # Lowercase: extrinsic, the first listed applied first.
    expected = np.eye(3)
    for axis, a in zip(seq, angles):
        expected = ELEMENTARY[axis](math.radians(a)) @ expected
    np.testing.assert_allclose(euler_to_matrix(seq.lower(), angles), expected, atol=1e-12)


def test_length_scale_inference() -> None:
    # A human-sized chain: hips, a 0.9 m leg, a 0.7 m torso+head, a 0.6 m arm.
    offsets = [(0, 0.9, 0), (0.1, -0.45, 0), (0, -0.45, 0), (0, 0.35, 0), (0, 0.35, 0), (0.3, 0, 0), (0.3, 0, 0)]
    parents = [-1, 0, 1, 0, 3, 3, 5]
    off = [np.array(o, dtype=float) for o in offsets]
    assert infer_length_scale(off, parents) == 1.0
    assert infer_length_scale([o * 100 for o in off], parents) == 0.01
    assert infer_length_scale([o * 1000 for o in off], parents) == 0.001
    # A dummy root's offset to its only child (Bandai's joint_Root -> Hips) does not count.
    dummy = [np.zeros(3), np.array([0, 93.0, -452.0])] + [o * 100 for o in off[1:]]
    assert infer_length_scale(dummy, [-1, 0] + [p + 1 for p in parents[1:]]) == 0.01
    assert infer_length_scale([np.array([0, 94.0, -452.0])] + [o for o in off[1:]], parents) == 1.0


# ----------------------------------------------------------------------------------------------
# Robustness: corrupt a real file at random; only MocapFormatError may come out.

BVH_TEXT = (FIXTURES / "bandai_namco/dataset-1/dataset-1_dash_normal_001.bvh").read_bytes()
GARBAGE = st.sampled_from([b"", b"x", b"{", b"}", b"nan", b"1e999", b"-", b"\x00", b"\xff\xfe", b"End Site", b"CHANNELS 2 Xrotation", b"MOTION", b"Frames: 3", b"\n", b"  ", b"JOINT"])


@settings(max_examples=200, deadline=None)
@given(cut=st.integers(0, len(BVH_TEXT)), length=st.integers(0, 40), garbage=GARBAGE)
def test_corrupt_bvh_raises_only_mocap_errors(cut: int, length: int, garbage: bytes) -> None:
    for data in (BVH_TEXT[:cut], BVH_TEXT[:cut] + garbage + BVH_TEXT[cut + length :]):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "x.bvh"
            path.write_bytes(data)
            try:
                m = read_bvh(path)
            except MocapFormatError as e:
                assert str(e).startswith(str(path))
            else:
                assert np.isfinite(m.positions).all()
