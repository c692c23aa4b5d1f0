"""ASF/AMC reader on a tiny hand-built skeleton whose answers are worked out by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from posesynth.mocap import MocapFormatError, find_asf, read_amc, read_asf, read_motion
from posesynth.mocap.asf import asf_candidates

# length 0.0254 -> one unit is 1/0.0254 inch = 1 metre, so positions come out in file units.
ASF = """\
# a tiny skeleton
:version 1.10
:name tiny
:units
  mass 1.0
  length 0.0254
  angle {angle}
:documentation
  hand-made for tests
:root
   order TX TY TZ RX RY RZ
   axis XYZ
   position 0 0 0
   orientation 0 0 0
:bonedata
  begin
     id 1
     name b1
     direction 0 0 1
     length 2
     axis 0 0 {a90} XYZ
    dof rx
    limits (-180.0 180.0)
  end
  begin
     id 2
     name b2
     direction 1 0 0
     length 1
     axis 0 0 0 XYZ
  end
  begin
     id 3
     name b3
     direction 0 1 0
     length 1
     axis 0 0 0 XYZ
    dof rz rx
    limits (-180.0 180.0)
           (-180.0 180.0)
  end
:hierarchy
  begin
    root b1 b3
    b1 b2
  end
"""

AMC = """\
#!comment line
:FULLY-SPECIFIED
:{unit}
1
root 1 2 3 0 0 0
b1 {a90}
b3 {a90} {a90}
2
root 0 0 0 0 0 {a90}
b1 0
b3 0 0
3
root 0 0 0 {a90} {a90} 0
b3 0 0
b1 0
"""

# Worked by hand (column vectors):
# frame 0: root at (1, 2, 3), no rotation.
#   b1: C = Rz(90), Rdof = Rx(90): R = C Rx(90) C^-1 = Ry(90) (a rotation about C x = +y).
#       Ry(90) (0, 0, 1) = (1, 0, 0): end = (1, 2, 3) + 2 (1, 0, 0) = (3, 2, 3).
#       (Without the axis conjugation, Rx(90) (0, 0, 1) = (0, -1, 0) would give (1, 0, 3).)
#   b2: fixed on b1: Ry(90) (1, 0, 0) = (0, 0, -1): end = (3, 2, 2).
#   b3: dof "rz rx" = rz applied first: Rx(90) Rz(90) (0, 1, 0) = Rx(90) (-1, 0, 0) = (-1, 0, 0):
#       end = (0, 2, 3).  (Rz Rx would give (0, 0, 1) -> (1, 2, 4).)
# frame 1: root Rz(90).  b1: Rz(90) (0, 0, 1) = (0, 0, 1): end (0, 0, 2); b2: Rz(90) (1, 0, 0)
#   = (0, 1, 0): end (0, 1, 2); b3: Rz(90) (0, 1, 0) = (-1, 0, 0): end (-1, 0, 0).
# frame 2: root "RX RY" = rx first about fixed axes: R = Ry(90) Rx(90).
#   b1: Rx(90) (0, 0, 1) = (0, -1, 0), Ry(90) keeps it: end (0, -2, 0).  (Intrinsic Rx Ry: (2, 0, 0).)
#   b2: Rx(90) (1, 0, 0) = (1, 0, 0), Ry(90) -> (0, 0, -1): end (0, -2, -1).
#   b3: Rx(90) (0, 1, 0) = (0, 0, 1), Ry(90) -> (1, 0, 0): end (1, 0, 0).
EXPECTED = np.array(
    [
        [[1, 2, 3], [3, 2, 3], [3, 2, 2], [0, 2, 3]],
        [[0, 0, 0], [0, 0, 2], [0, 1, 2], [-1, 0, 0]],
        [[0, 0, 0], [0, -2, 0], [0, -2, -1], [1, 0, 0]],
    ],
    dtype=float,
)


def ry90() -> np.ndarray:
    return np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]])


def write_pair(folder: Path, *, radians: bool = False, asf_name: str = "tiny.asf", amc_name: str = "tiny_01.amc"):
    a90 = repr(math.pi / 2) if radians else "90"
    asf = folder / asf_name
    asf.write_text(ASF.format(angle="rad" if radians else "deg", a90=a90))
    amc = folder / amc_name
    amc.write_text(AMC.format(unit="RADIANS" if radians else "DEGREES", a90=a90))
    return asf, amc


@pytest.mark.parametrize("radians", [False, True])
def test_hand_computed_positions(tmp_path: Path, radians: bool) -> None:
    asf, amc = write_pair(tmp_path, radians=radians)
    m = read_motion(amc)  # finds tiny.asf from tiny_01.amc
    assert m.format == "amc"
    assert m.joint_names == ("root", "b1", "b2", "b3")
    assert m.parents == (-1, 0, 1, 0)
    assert m.num_frames == 3
    assert m.fps == 120.0
    assert m.length_scale == pytest.approx(1.0)
    np.testing.assert_allclose(m.positions, EXPECTED, atol=1e-12)
    np.testing.assert_allclose(m.rotations[0, 1], ry90(), atol=1e-12)
    np.testing.assert_allclose(m.rotations[0, 2], m.rotations[0, 1])  # b2 has no dofs
    np.testing.assert_allclose(m.rotations[2, 0], ry90() @ np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]), atol=1e-12)


def test_units_and_explicit_scale(tmp_path: Path) -> None:
    asf, amc = write_pair(tmp_path)
    asf.write_text(asf.read_text().replace("length 0.0254", "length 0.45"))
    m = read_amc(amc, asf)
    assert m.length_scale == pytest.approx(0.0254 / 0.45)
    np.testing.assert_allclose(m.positions, EXPECTED * 0.0254 / 0.45, atol=1e-12)
    m = read_motion(amc, skeleton=asf, length_scale=2.0)
    np.testing.assert_allclose(m.positions, EXPECTED * 2.0, atol=1e-12)


def test_root_preset_position_and_samples_per_second(tmp_path: Path) -> None:
    asf, amc = write_pair(tmp_path)
    asf.write_text(asf.read_text().replace("position 0 0 0", "position 10 0 0"))
    amc.write_text(amc.read_text().replace(":FULLY-SPECIFIED", ":FULLY-SPECIFIED\n:SAMPLES-PER-SECOND 60"))
    m = read_motion(amc)
    assert m.fps == 60.0
    np.testing.assert_allclose(m.positions, EXPECTED + [10, 0, 0], atol=1e-12)


def test_asf_parse(tmp_path: Path) -> None:
    asf, _ = write_pair(tmp_path)
    s = read_asf(asf)
    assert s.joint_names == ("root", "b1", "b2", "b3")
    assert s.parents == (-1, 0, 1, 0)
    assert s.length_unit == 0.0254 and s.degrees
    assert s.root_order == ("TX", "TY", "TZ", "RX", "RY", "RZ")
    b1, b2, b3 = s.bones
    assert b1.dofs == ("rx",) and b2.dofs == () and b3.dofs == ("rz", "rx")
    assert b1.axis_order == "XYZ" and list(b1.axis) == [0, 0, 90]
    assert b1.length == 2.0


def test_asf_lookup_rules(tmp_path: Path) -> None:
    # HDM05 layout: <root>/HDM_bd.asf and <root>/<class>/HDM_bd_<class>_001_120.amc
    (tmp_path / "kick").mkdir()
    asf, amc = write_pair(tmp_path, asf_name="HDM_bd.asf", amc_name="kick/HDM_bd_kick_001_120.amc")
    assert find_asf(amc) == asf
    np.testing.assert_allclose(read_motion(amc).positions, EXPECTED, atol=1e-12)
    # CMU layout: 01_01.amc next to 01.asf
    asf2, amc2 = write_pair(tmp_path, asf_name="01.asf", amc_name="01_01.amc")
    assert find_asf(amc2) == asf2
    # Same stem wins.
    same = tmp_path / "01_01.asf"
    same.write_text(asf2.read_text())
    assert find_asf(amc2) == same
    # Two folders up is the limit.
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    lost = deep / "HDM_bd_x_001_120.amc"
    lost.write_text(amc.read_text())
    assert tmp_path / "HDM_bd.asf" not in asf_candidates(lost)
    with pytest.raises(MocapFormatError) as e:
        read_motion(lost)
    assert str(e.value).startswith(f"{lost}: no ASF skeleton found")
    assert str(deep / "HDM_bd.asf") in str(e.value) and str(tmp_path / "a" / "HDM_bd.asf") in str(e.value)
