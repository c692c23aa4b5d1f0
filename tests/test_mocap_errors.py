"""Bad input gives a MocapFormatError that names the file, the line and the frame; nothing else escapes."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posesynth.mocap import MocapFormatError, read_amc, read_asf, read_motion

FIXTURES = Path(__file__).parent / "fixtures"
HDM_AMC = FIXTURES / "hdm05/kickLFront1Reps/HDM_bd_kickLFront1Reps_003_120.amc"
HDM_ASF = FIXTURES / "hdm05/HDM_bd.asf"

BVH = """\
HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Spine
  {
    OFFSET 0 10 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 10 0
    }
  }
}
MOTION
Frames: 3
Frame Time: 0.0333333
0 90 0 0 0 0 0 0 0
0 90 0 10 0 0 0 0 0
0 90 0 20 0 0 0 0 0
"""  # lines: 16 MOTION, 17 Frames, 18 Frame Time, 19-21 frames 0-2


def lines_of(text: str) -> list[str]:
    return text.splitlines()


def edit(text: str, line: int, new: str | None) -> str:
    """Replace (or delete, when ``new`` is None) 1-based ``line``."""
    ls = lines_of(text)
    if new is None:
        del ls[line - 1]
    else:
        ls[line - 1] = new
    return "\n".join(ls) + "\n"


def fails(path: Path, line: int | None, frame: int | None, *words: str, **kw) -> MocapFormatError:
    """Read ``path``; check the error's location and that its message holds ``words``."""
    with pytest.raises(MocapFormatError) as info:
        read_motion(path, **kw)
    e = info.value
    where = f"{path}:{line}: " if line is not None else f"{path}: "
    assert str(e).startswith(where), str(e)
    assert (e.path, e.line, e.frame) == (path, line, frame), str(e)
    if frame is not None:
        assert str(e).endswith(f"(frame {frame})")
    for w in words:
        assert w in str(e), (w, str(e))
    return e


@pytest.fixture
def bvh(tmp_path: Path):
    def write(text: str, name: str = "clip.bvh") -> Path:
        p = tmp_path / name
        p.write_text(text)
        return p

    return write


def test_valid_base_file_reads(bvh) -> None:
    m = read_motion(bvh(BVH), length_scale=0.01)
    assert m.joint_names == ("Hips", "Spine", "Spine_end")
    # frame 2: Hips at (0, 0.9, 0) turned by Zrotation 20; both 0.1 m bones point along R_z(20) +y.
    a = np.radians(20)
    np.testing.assert_allclose(m.positions[2, 2], [-0.2 * np.sin(a), 0.9 + 0.2 * np.cos(a), 0.0], atol=1e-12)


# ---------------------------------------------------------------------------------- BVH motion


def test_truncated_fewer_frames_than_declared(bvh) -> None:
    p = bvh(edit(BVH, 21, None))
    fails(p, 20, None, "truncated", "declares 3 frames, found 2")  # line 20: the last line


def test_truncated_in_the_middle_of_a_line(bvh) -> None:
    p = bvh(BVH[: BVH.index("0 90 0 20") + 12])
    fails(p, 21, 2, "truncated", "declares 3 frames, found 2 complete", "5 of 9 values")


def test_wrong_number_of_values_in_a_frame(bvh) -> None:
    p = bvh(edit(BVH, 20, "0 90 0 10 0 0 0 0"))
    fails(p, 20, 1, "expected 9 values per frame, found 8")


def test_more_frames_than_declared(bvh) -> None:
    p = bvh(BVH + "0 0 0 0 0 0 0 0 0\n")
    fails(p, 22, None, "Frames: declares 3 frames, found 4")


def test_malformed_number_in_motion(bvh) -> None:
    p = bvh(edit(BVH, 20, "0 90 0 10 0 0 0 1.2.3 0"))
    fails(p, 20, 1, "malformed number '1.2.3'", "Xrotation of joint 'Spine'")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999"])
def test_non_finite_values_name_frame_and_joint(bvh, value: str) -> None:
    p = bvh(edit(BVH, 21, f"0 90 0 20 0 {value} 0 0 0"))
    fails(p, 21, 2, "non-finite value", "channel Yrotation of joint 'Hips'")


@pytest.mark.parametrize("value", ["0", "-0.1", "0.0"])
def test_non_positive_frame_time(bvh, value: str) -> None:
    fails(bvh(edit(BVH, 18, f"Frame Time: {value}")), 18, None, "non-positive frame time")


def test_malformed_frame_time_and_frames(bvh) -> None:
    fails(bvh(edit(BVH, 18, "Frame Time: fast")), 18, None, "malformed number 'fast'", "Frame Time")
    fails(bvh(edit(BVH, 17, "Frames: many")), 17, None, "malformed frame count 'many'")
    fails(bvh(edit(BVH, 17, "Frames: 0")), 17, None, "0 frames")
    fails(bvh(edit(BVH, 18, None)), 18, None, "expected 'Frame Time: seconds' after Frames")
    fails(bvh(edit(BVH, 17, None)), 17, None, "expected 'Frames: N' after MOTION, found 'Frame Time")
    fails(bvh(edit(BVH, 17, "Frame Time: 0.03")), 17, None, "expected 'Frames: N' after MOTION")


def test_frames_and_frame_time_spellings(bvh) -> None:
    text = BVH.replace("Frames: 3", "FRAMES :\t3").replace("Frame Time:", "Frame time :")
    assert read_motion(bvh(text)).fps == 30.0


def test_comments_crlf_tabs(bvh) -> None:
    text = BVH.replace("  ", "\t").replace("MOTION", "# comment\nMOTION").replace("\n0 90 0 10", "\n  # mid\n0 90 0 10")
    p = bvh(text.replace("\n", "\r\n"))
    ref = read_motion(bvh(BVH, "ref.bvh"))
    np.testing.assert_array_equal(read_motion(p).positions, ref.positions)


# ------------------------------------------------------------------------------- BVH hierarchy


def test_missing_motion_section(bvh) -> None:
    fails(bvh("\n".join(lines_of(BVH)[:15]) + "\n"), 15, None, "missing MOTION section")


def test_unbalanced_braces_missing_close(bvh) -> None:
    fails(bvh(edit(BVH, 14, None)), 15, None, "unbalanced braces", "'Hips' opened at line 2")


def test_unbalanced_braces_extra_close(bvh) -> None:
    fails(bvh(edit(BVH, 15, "}\n}")), 16, None, "unbalanced braces", "'}' without a matching '{'")


def test_unknown_channel_name(bvh) -> None:
    fails(bvh(edit(BVH, 9, "    CHANNELS 3 Zrotation Xrotation Wrotation")), 9, None, "unknown channel name 'Wrotation'")


def test_wrong_channel_count(bvh) -> None:
    fails(bvh(edit(BVH, 9, "    CHANNELS 3 Zrotation Xrotation")), 9, None, "CHANNELS declares 3 channels but lists 2")
    fails(bvh(edit(BVH, 9, "    CHANNELS three Zrotation")), 9, None, "malformed channel count 'three'")


def test_malformed_offset(bvh) -> None:
    fails(bvh(edit(BVH, 8, "    OFFSET 0 1O 0")), 8, None, "malformed number '1O'", "OFFSET")
    fails(bvh(edit(BVH, 8, "    OFFSET 0 10")), 8, None, "OFFSET needs 3 numbers, found 2")
    fails(bvh(edit(BVH, 8, None)), 13, None, "joint 'Spine' (line 6) has no OFFSET")
    fails(bvh(edit(BVH, 12, None)), 12, None, "End Site (line 10) has no OFFSET")


def test_unexpected_keyword_and_not_bvh(bvh) -> None:
    fails(bvh(edit(BVH, 6, "  JOINTT Spine")), 6, None, "unexpected 'JOINTT'")
    fails(bvh("hello world\n"), 1, None, "not a BVH file")


def test_duplicate_joint_names(bvh) -> None:
    fails(bvh(edit(BVH, 6, "  JOINT Hips")), 6, None, "duplicate joint name 'Hips'")


# ------------------------------------------------------------------------------- any file


@pytest.mark.parametrize("suffix", [".bvh", ".amc"])
def test_empty_file(tmp_path: Path, suffix: str) -> None:
    for content in (b"", b"  \n\n\t\n"):
        p = tmp_path / f"empty{suffix}"
        p.write_bytes(content)
        fails(p, None, None, "empty", skeleton=HDM_ASF if suffix == ".amc" else None)


@pytest.mark.parametrize("suffix", [".bvh", ".amc"])
def test_binary_file(tmp_path: Path, suffix: str) -> None:
    p = tmp_path / f"binary{suffix}"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    fails(p, None, None, "not a text", skeleton=HDM_ASF if suffix == ".amc" else None)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    fails(tmp_path / "nope.bvh", None, None, "not found")
    d = tmp_path / "dir.bvh"
    d.mkdir()
    fails(d, None, None, "directory")


def test_suffixes(tmp_path: Path) -> None:
    fails(HDM_ASF, None, None, "pass the .amc motion file")
    p = tmp_path / "x.c3d"
    p.write_text("x")
    fails(p, None, None, "unknown mocap file type '.c3d'", ".bvh, .amc")
    with pytest.raises(ValueError, match="only for .amc"):
        read_motion(FIXTURES / "bandai_namco/dataset-2/dataset-2_raise-up-left-hand_active_003.bvh", skeleton=HDM_ASF)


# ------------------------------------------------------------------------------- AMC / ASF

AMC_LINES = HDM_AMC.read_text(encoding="latin-1").split("\n")
# Line 4 is "1", lines 5-33 frame 0's bones; line 34 is "2" (frame 1), 35 "root ..." etc.


@pytest.fixture
def amc(tmp_path: Path):
    """Write an edited copy of the HDM05 clip next to a copy of its ASF."""
    (tmp_path / "HDM_bd.asf").write_bytes(HDM_ASF.read_bytes())

    def write(lines: list[str]) -> Path:
        p = tmp_path / "HDM_bd_test_001_120.amc"
        p.write_text("\n".join(lines), encoding="latin-1")
        return p

    return write


def amc_edit(line: int, new: str | None) -> list[str]:
    ls = list(AMC_LINES)
    if new is None:
        del ls[line - 1]
    else:
        ls[line - 1] = new
    return ls


def test_amc_fixture_layout() -> None:
    assert AMC_LINES[3] == "1" and AMC_LINES[4].startswith("root ") and AMC_LINES[33] == "2"
    assert AMC_LINES[35].startswith("lowerback ")


def test_amc_frame_missing_a_bone(amc) -> None:
    fails(amc(amc_edit(36, None)), 34, 1, "no data for bone 'lowerback'")


def test_amc_truncated(amc) -> None:
    # Frame k's number is on line 4 + 30 k; cut frame 6 after 9 of its 29 bone lines.
    fails(amc(AMC_LINES[: 4 + 30 * 6 + 9]), 4 + 30 * 6, 6, "no data for bone 'lfemur'", "truncated")


def test_amc_bone_line_wrong_count(amc) -> None:
    fails(amc(amc_edit(36, "lowerback 14.2513 -6.08748")), 36, 1, "'lowerback' has 3 dofs in the ASF but this line holds 2 values")
    fails(amc(amc_edit(36, "lowerback 14.2513 -6.08748 1 2")), 36, 1, "holds 4 values")


def test_amc_malformed_number(amc) -> None:
    fails(amc(amc_edit(36, "lowerback 14.2513 -6.08x48 1")), 36, 1, "malformed number '-6.08x48'", "'lowerback'")


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity"])
def test_amc_non_finite(amc, value: str) -> None:
    fails(amc(amc_edit(36, f"lowerback 14.2513 {value} 1")), 36, 1, "non-finite value", "'lowerback'")


def test_amc_unknown_bone_and_duplicate(amc) -> None:
    fails(amc(amc_edit(36, "tail 1 2 3")), 36, 1, "unknown bone 'tail'", "HDM_bd.asf")
    fails(amc(amc_edit(36, AMC_LINES[6])), 37, 1, "'upperback' appears twice")  # the second one


def test_amc_frame_numbers(amc) -> None:
    fails(amc(amc_edit(34, "7")), 34, 1, "frame number 7 follows 1")
    fails(amc(amc_edit(34, "2 3")), 34, None, "expected a frame number alone")
    fails(amc(amc_edit(4, "root 0 0 0 0 0 0")), 4, None, "expected a frame number before the first bone line")


def test_amc_without_frames(amc) -> None:
    fails(amc(AMC_LINES[:3]), 3, None, "no frames")


def test_missing_skeleton(tmp_path: Path) -> None:
    p = tmp_path / "HDM_zz_kick_001_120.amc"
    p.write_text("\n".join(AMC_LINES))
    e = fails(p, None, None, "no ASF skeleton found", "HDM_zz.asf", str(tmp_path / "HDM_zz.asf"))
    assert str(tmp_path.parent / "HDM_zz.asf") in str(e)
    with pytest.raises(MocapFormatError) as info:
        read_motion(p, skeleton=tmp_path / "gone.asf")
    assert str(info.value) == f"{tmp_path / 'gone.asf'}: ASF skeleton file not found"


def test_unreadable_skeleton(tmp_path: Path) -> None:
    asf = tmp_path / "bin.asf"
    asf.write_bytes(b"\x00\x01\x02" * 100)
    with pytest.raises(MocapFormatError, match="not a text ASF skeleton file"):
        read_amc(HDM_AMC, asf)


ASF_TEXT = HDM_ASF.read_text(encoding="latin-1")


def asf_file(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "x.asf"
    p.write_text(text)
    return p


def asf_line(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.split("\n"), start=1) if needle in ln)


def test_asf_bone_in_hierarchy_never_defined(tmp_path: Path) -> None:
    text = ASF_TEXT.replace("lhand lfingers", "lhand lfingers lpinky")
    p = asf_file(tmp_path, text)
    line = asf_line(text, "lpinky")
    with pytest.raises(MocapFormatError) as info:
        read_asf(p)
    assert str(info.value) == f"{p}:{line}: bone 'lpinky' is referenced in :hierarchy but never defined in :bonedata"
    text = ASF_TEXT.replace("lfoot ltoes", "lfot ltoes")
    with pytest.raises(MocapFormatError, match=r"x.asf:\d+: bone 'lfot' is referenced"):
        read_asf(asf_file(tmp_path, text))


def test_asf_other_errors(tmp_path: Path) -> None:
    cases = {
        "length 2.28399": ("length 2.2x", "malformed number '2.2x'"),
        "dof rx ry rz\n    limits (-160.0 20.0)": ("dof rx ry rq\n    limits (-160.0 20.0)", "dof 'rq' is not supported"),
        "angle deg": ("angle grad", "units angle must be 'deg' or 'rad'"),
        "order TX TY TZ RX RY RZ": ("order TX TY TZ RX RY RW", "bad root order"),
        "axis 0 0 20  XYZ": ("axis 0 0 20  XYW", "bad axis order"),
    }
    for old, (new, words) in cases.items():
        assert old in ASF_TEXT, old
        text = ASF_TEXT.replace(old, new, 1)
        with pytest.raises(MocapFormatError, match=words) as info:
            read_asf(asf_file(tmp_path, text))
        assert info.value.line == asf_line(text, new.split("\n")[0])
    text = ASF_TEXT.replace("  end\n  begin\n     id 2 ", "  begin\n     id 2 ", 1)
    with pytest.raises(MocapFormatError, match="has no 'end'"):
        read_asf(asf_file(tmp_path, text))
    with pytest.raises(MocapFormatError, match="not an ASF file"):
        read_asf(asf_file(tmp_path, "hello\n"))


# ------------------------------------------------------------------------------- fuzzing

AMC_BYTES = HDM_AMC.read_bytes()[:6000]  # the header and a few frames
GARBAGE = st.sampled_from([b"", b"x", b"nan", b"-", b"\x00", b"\xff", b"root", b"lfemur", b"1", b"\n", b"  ", b":RADIANS\n"])


@settings(max_examples=150, deadline=None)
@given(cut=st.integers(0, len(AMC_BYTES)), length=st.integers(0, 40), garbage=GARBAGE)
def test_corrupt_amc_raises_only_mocap_errors(cut: int, length: int, garbage: bytes) -> None:
    for data in (AMC_BYTES[:cut], AMC_BYTES[:cut] + garbage + AMC_BYTES[cut + length :]):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "x.amc"
            path.write_bytes(data)
            try:
                m = read_amc(path, HDM_ASF)
            except MocapFormatError as e:
                assert str(e).startswith(str(path))
            else:
                assert np.isfinite(m.positions).all()


ASF_BYTES = HDM_ASF.read_bytes()


@settings(max_examples=150, deadline=None)
@given(cut=st.integers(0, len(ASF_BYTES)), length=st.integers(0, 40), garbage=GARBAGE)
def test_corrupt_asf_raises_only_mocap_errors(cut: int, length: int, garbage: bytes) -> None:
    for data in (ASF_BYTES[:cut], ASF_BYTES[:cut] + garbage + ASF_BYTES[cut + length :]):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "x.asf"
            path.write_bytes(data)
            try:
                m = read_amc(HDM_AMC, path)
            except MocapFormatError as e:
                assert str(e).startswith((str(path), str(HDM_AMC)))
            else:
                assert np.isfinite(m.positions).all()
