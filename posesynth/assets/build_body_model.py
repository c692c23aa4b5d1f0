"""Build posesynth's default body model, ``posesynth/assets/body_model/posesynth_neutral.npz``.

Run from the repository root::

    python posesynth/assets/build_body_model.py

The model is in SMPL's file format (same keys, shapes and joint tree) but it is *not*
SMPL: the mesh is procedural, made here from a few dozen numbers, and it is released
under the project's licence (Apache-2.0).  The build is deterministic (no random draws).

How it is made
--------------
* **Mesh.**  Every body part is a *shell*: a loft of superellipse cross-sections along a
  polyline of skeleton joints (the torso from crotch to neck, each leg from above the hip
  to below the ankle, each arm from inside the chest through collar, shoulder, elbow to
  the wrist, hands, feet, neck, head, nose, ears, thumbs), closed with rounded caps.
  Shells overlap; they are merged into one mesh without being welded.  Left parts are
  built once and mirrored (x -> -x) for the right.
* **Joints and regressor.**  Every joint is the centre of one cross-section (a *ring*)
  of some shell.  Its ``J_regressor`` row is a convex combination of that ring's
  vertices, solved by non-negative least squares so that it reproduces the design joint
  *and* each shape direction's designed joint motion exactly.
* **Skinning weights.**  Each cross-section lies at a position ``u`` along its shell's
  chain of bones; its weights switch from one bone to the next at each joint with a
  smoothstep a few centimetres wide.  The torso also blends laterally into the collars
  (shoulder tops) and the hips (buttocks, groin).
* **Shape space.**  Ten semantic directions (see ``posesynth/assets/README.md``).  For each, the
  designed joint motion ``dJ`` (24, 3) is computed on the skeleton; every cross-section
  then moves by ``dJ`` interpolated along its chain (so a lengthened bone stretches its
  own segment linearly and carries everything distal rigidly).  Stature is a uniform
  scale about the point between the soles, girth scales each cross-section about its
  centre, and the torso gets smooth, left/right-symmetric fields that follow the
  shoulders, hips and neck.
* **Pose correctives.**  ``posedirs`` is all zeros: there are none.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.optimize import nnls

from posesynth.skeleton import JOINT_INDEX, NUM_JOINTS, SMPL_JOINT_NAMES, SMPL_PARENTS, mirror_index

OUT = Path(__file__).resolve().parent / "body_model" / "posesynth_neutral.npz"
NUM_BETAS = 10
NUM_POSE_BASIS = 9 * (NUM_JOINTS - 1)  # 207
ROOT_PARENT = 4294967295  # SMPL's files store the root's parent as uint32(-1)
X, Y, Z = np.eye(3)

# --------------------------------------------------------------------------------------
# Skeleton: design rest joints (SMPL-neutral-like proportions, left side and midline).
# --------------------------------------------------------------------------------------
_DESIGN_LEFT = {
    "pelvis": (0.0, -0.223, 0.028),
    "left_hip": (0.068, -0.314, 0.018),
    "spine1": (0.0, -0.114, 0.004),
    "left_knee": (0.106, -0.691, 0.016),
    "spine2": (0.0, 0.015, 0.030),
    "left_ankle": (0.088, -1.109, -0.029),
    "spine3": (0.0, 0.073, 0.034),
    "left_foot": (0.120, -1.166, 0.097),
    "neck": (0.0, 0.290, -0.012),
    "left_collar": (0.075, 0.194, 0.015),
    "head": (0.0, 0.352, 0.040),
    "left_shoulder": (0.171, 0.224, -0.006),
    "left_elbow": (0.432, 0.212, -0.031),
    "left_wrist": (0.688, 0.219, -0.028),
    "left_hand": (0.773, 0.210, -0.043),
}
MIRROR = mirror_index()
FLIP = np.array([-1.0, 1.0, 1.0])


def design_joints() -> np.ndarray:
    """(24, 3) rest joints, right side mirrored from the left."""
    J = np.zeros((NUM_JOINTS, 3))
    for name, p in _DESIGN_LEFT.items():
        j = JOINT_INDEX[name]
        J[j] = p
        J[MIRROR[j]] = np.asarray(p) * FLIP
    return J


J0 = design_joints()


def jp(name: str) -> np.ndarray:
    return J0[JOINT_INDEX[name]].copy()


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def smoothstep(x, lo: float, hi: float):
    t = np.clip((np.asarray(x, dtype=float) - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


# --------------------------------------------------------------------------------------
# Shape space on the skeleton: dJ[:, :, k] is how the rest joints move per unit beta k.
# --------------------------------------------------------------------------------------
STATURE_PER_UNIT = 0.07  # metres of height per unit of beta 0
GIRTH_PER_UNIT = 0.10


def _descendants(j: int) -> list[int]:
    out = [j]
    for c in range(NUM_JOINTS):
        if SMPL_PARENTS[c] >= 0 and SMPL_PARENTS[c] in out:
            out.append(c)
    return out


def _lengthen(dJ: np.ndarray, parent: str, child: str, amount: float, both_sides: bool = True) -> None:
    """Move ``child`` and everything below it by ``amount`` along parent -> child."""
    pairs = [(JOINT_INDEX[parent], JOINT_INDEX[child])]
    if both_sides and child.startswith("left_"):
        pairs.append((MIRROR[pairs[0][0]], MIRROR[pairs[0][1]]))
    for p, c in pairs:
        step = amount * unit(J0[c] - J0[p])
        for d in _descendants(c):
            dJ[d] += step


def _torso_stretch_fraction(y: np.ndarray) -> np.ndarray:
    """Fraction of the pelvis -> neck stretch at height ``y`` (0 at the pelvis, 1 at the neck)."""
    y_p, y_n = jp("pelvis")[1], jp("neck")[1]
    return np.clip((np.asarray(y) - y_p) / (y_n - y_p), 0.0, 1.0)


def design_joint_dirs(centre: np.ndarray, scale: float) -> np.ndarray:
    """(24, 3, 10) designed joint motion per unit of each beta."""
    dJ = np.zeros((NUM_JOINTS, 3, NUM_BETAS))
    dJ[:, :, 0] = scale * (J0 - centre)
    # beta 1 (girth) leaves the joints where they are.
    for k, (parent, child, amount) in {
        2: ("left_hip", "left_knee", 0.025),
        3: ("left_knee", "left_ankle", 0.025),
        4: ("left_shoulder", "left_elbow", 0.02),
        5: ("left_elbow", "left_wrist", 0.015),
        6: ("left_collar", "left_shoulder", 0.02),
    }.items():
        d = np.zeros((NUM_JOINTS, 3))
        _lengthen(d, parent, child, amount)
        dJ[:, :, k] = d
    d = np.zeros((NUM_JOINTS, 3))
    for side in ("left_hip", "right_hip"):
        sign = np.sign(jp(side)[0])
        for j in _descendants(JOINT_INDEX[side]):
            d[j] += 0.015 * sign * X
    dJ[:, :, 7] = d
    # beta 8: everything above the pelvis rises with its height fraction between pelvis and neck
    d = np.zeros((NUM_JOINTS, 3))
    below = set(_descendants(JOINT_INDEX["left_hip"])) | set(_descendants(JOINT_INDEX["right_hip"])) | {0}
    for j in range(NUM_JOINTS):
        if j not in below:
            d[j, 1] = 0.03 * _torso_stretch_fraction(J0[j, 1])
    dJ[:, :, 8] = d
    d = np.zeros((NUM_JOINTS, 3))
    _lengthen(d, "spine3", "neck", 0.0075)
    _lengthen(d, "neck", "head", 0.0075)
    dJ[:, :, 9] = d
    return dJ


# --------------------------------------------------------------------------------------
# Shells: lofts of superellipse cross-sections along a chain of nodes.
# --------------------------------------------------------------------------------------
@dataclass
class Node:
    """A point of a shell's centre line; ``joints`` ((index, weight), ...) say how it moves."""

    p: np.ndarray
    joints: tuple[tuple[int, float], ...]
    is_ring: bool = False  # place a cross-section exactly here (a regressor ring)


@dataclass
class Key:
    """Profile key at chain parameter ``u``: radii along e1/e2, exponent, world offset, girth."""

    u: float
    r1: float
    r2: float
    n: float = 2.0
    off: tuple[float, float, float] = (0.0, 0.0, 0.0)
    g1: float = 1.0
    g2: float = 1.0


@dataclass
class Shell:
    name: str
    verts: np.ndarray  # (n, 3)
    faces: np.ndarray  # (m, 3) local indices
    u: np.ndarray  # (n,) chain parameter of each vertex's cross-section
    centre: np.ndarray  # (n, 3) centre of each vertex's cross-section
    frame: np.ndarray  # (n, 3, 3) rows t, e1, e2 of the cross-section
    girth: np.ndarray  # (n, 2) girth factors along e1, e2
    nodes: list[Node]
    node_u: np.ndarray
    rings: dict[int, np.ndarray] = field(default_factory=dict)  # joint -> local vertex ids
    weights: np.ndarray | None = None  # (n, 24)
    dirs: np.ndarray | None = None  # (n, 3, 10)


@dataclass
class Section:
    """One cross-section: a superellipse of radii ``r1`` along ``e1`` and ``r2`` along ``e2``."""

    u: float  # chain parameter
    c: np.ndarray  # (3,) centre
    t: np.ndarray  # (3,) normal of the section plane (the loft direction)
    r1: float
    r2: float
    expo: float
    g1: float  # girth factors along e1, e2
    g2: float

    def frame(self, ref: np.ndarray) -> np.ndarray:
        """(3, 3) rows t, e1, e2: e1 is ``ref`` made perpendicular to t, e1 x e2 = t."""
        e1 = unit(ref - np.dot(ref, self.t) * self.t)
        return np.stack([self.t, e1, np.cross(self.t, e1)])


def ring_offsets(n_pts: int, r1: float, r2: float, expo: float) -> np.ndarray:
    """(n_pts, 2) superellipse points, centrally and mirror symmetric."""
    th = 2.0 * np.pi * np.arange(n_pts) / n_pts
    c, s = np.cos(th), np.sin(th)
    e = 2.0 / expo
    return np.stack([r1 * np.sign(c) * np.abs(c) ** e, r2 * np.sign(s) * np.abs(s) ** e], -1)


def _segment(node_u: np.ndarray, u: float) -> int:
    return int(np.clip(np.searchsorted(node_u, u, side="right") - 1, 0, len(node_u) - 2))


def _polyline(pts: np.ndarray, node_u: np.ndarray, u: float) -> np.ndarray:
    """The chain's point at parameter ``u`` (linear extrapolation past the ends)."""
    i = _segment(node_u, u)
    t = (u - node_u[i]) / (node_u[i + 1] - node_u[i])
    return pts[i] + t * (pts[i + 1] - pts[i])


def _tangent(pts: np.ndarray, node_u: np.ndarray, u: float, blend: float, after: bool) -> np.ndarray:
    """Chain direction at ``u``, blended across inner nodes over +-``blend``.

    With ``after`` the turn happens over ``[node, node + 2 blend]``, so that every section
    between two nodes proximal of the turn is parallel (squashing a segment then never
    folds it).
    """
    dirs = [unit(pts[i + 1] - pts[i]) for i in range(len(pts) - 1)]
    t = dirs[_segment(node_u, u)]
    for k in range(1, len(pts) - 1):  # inner nodes
        lo, hi = (node_u[k], node_u[k] + 2 * blend) if after else (node_u[k] - blend, node_u[k] + blend)
        if lo <= u < hi:
            w = float(smoothstep(u, lo, hi))
            t = unit((1 - w) * dirs[k - 1] + w * dirs[k])
    return t


def _section_grid(nodes: list[Node], node_u: np.ndarray, du: float) -> np.ndarray:
    """Parameters of the sections: about every ``du``, plus exactly at each ring node."""
    u0, u1 = node_u[0], node_u[-1]
    grid = np.linspace(u0, u1, max(2, int(round((u1 - u0) / du)) + 1))
    ring_u = np.array([u for u, n in zip(node_u, nodes) if n.is_ring])
    if len(ring_u):
        grid = grid[np.min(np.abs(grid[:, None] - ring_u[None]), axis=1) > 0.4 * du]
        grid = np.sort(np.concatenate([grid, ring_u]))
    return grid


def _caps(first: Section, last: Section, caps: tuple[float, float], n_cap: int) -> tuple[list, list]:
    """Rounded (quarter-ellipse profile) rings beyond the first and last sections."""
    start, end = [], []
    for j in range(1, n_cap + 1):
        phi = 0.5 * np.pi * j / (n_cap + 1)
        for src, dst, sign, length in ((first, start, -1.0, caps[0]), (last, end, 1.0, caps[1])):
            c = src.c + sign * length * np.sin(phi) * src.t
            dst.append(replace(src, c=c, r1=src.r1 * np.cos(phi), r2=src.r2 * np.cos(phi)))
    return start[::-1], end


def _tube_faces(n_sec: int, n_ring: int) -> np.ndarray:
    """Faces of ``n_sec`` rings of ``n_ring`` vertices closed by two poles after them, wound outward."""
    k = np.arange(n_ring)
    kn = (k + 1) % n_ring
    faces = []
    for s in range(n_sec - 1):
        a, b = s * n_ring + k, s * n_ring + kn
        c, d = (s + 1) * n_ring + kn, (s + 1) * n_ring + k
        faces += [np.stack([a, b, c], 1), np.stack([a, c, d], 1)]
    p_start, p_end = n_sec * n_ring, n_sec * n_ring + 1
    last = (n_sec - 1) * n_ring
    faces.append(np.stack([kn, k, np.full(n_ring, p_start)], 1))
    faces.append(np.stack([last + k, last + kn, np.full(n_ring, p_end)], 1))
    return np.concatenate(faces)


def loft(
    name: str,
    nodes: list[Node],
    keys: list[Key],
    n_ring: int,
    ref: np.ndarray,
    du: float,
    caps: tuple[float, float],
    n_cap: int = 4,
    param: str = "arc",
    fixed_tangent: np.ndarray | None = None,
    blend: float = 0.03,
    blend_after: bool = False,
) -> Shell:
    """A closed shell around the chain ``nodes``, its profile interpolated between ``keys``.

    ``param`` "arc": ``u`` is arc length along the chain; "y": ``u`` is the height (torso, head).
    ``caps`` are the lengths of the rounded start and end caps beyond the first/last section.
    """
    pts = np.stack([n.p for n in nodes])
    if param == "arc":
        node_u = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    else:
        node_u = pts[:, 1].copy()
    ku = np.array([k.u for k in keys])
    f = {a: PchipInterpolator(ku, np.array([getattr(k, a) for k in keys], dtype=float), axis=0)
         for a in ("r1", "r2", "n", "off", "g1", "g2")}
    grid = _section_grid(nodes, node_u, du)
    secs = [
        Section(u, _polyline(pts, node_u, u) + f["off"](u),
                fixed_tangent if fixed_tangent is not None else _tangent(pts, node_u, u, blend, blend_after),
                *(float(f[a](u)) for a in ("r1", "r2", "n", "g1", "g2")))
        for u in grid
    ]
    start, end = _caps(secs[0], secs[-1], caps, n_cap)
    poles = [replace(secs[0], c=secs[0].c - caps[0] * secs[0].t),
             replace(secs[-1], c=secs[-1].c + caps[1] * secs[-1].t)]
    secs = start + secs + end
    verts = []
    for sec in secs:
        _, e1, e2 = sec.frame(ref)
        off = ring_offsets(n_ring, sec.r1, sec.r2, sec.expo)
        verts.append(sec.c + off[:, :1] * e1 + off[:, 1:] * e2)
    per_vertex = [s for s in secs for _ in range(n_ring)] + poles
    rings = {}
    for u, n in zip(node_u, nodes):
        if n.is_ring:
            si = n_cap + int(np.flatnonzero(grid == u)[0])
            rings.update({j: np.arange(si * n_ring, (si + 1) * n_ring) for j, w in n.joints if w == 1.0})
    return Shell(
        name=name, verts=np.concatenate(verts + [np.stack([p.c for p in poles])]),
        faces=_tube_faces(len(secs), n_ring), u=np.array([s.u for s in per_vertex]),
        centre=np.stack([s.c for s in per_vertex]), frame=np.stack([s.frame(ref) for s in per_vertex]),
        girth=np.array([[s.g1, s.g2] for s in per_vertex]), nodes=nodes, node_u=node_u, rings=rings,
    )


def J(name: str) -> int:
    return JOINT_INDEX[name]


def node(p, *joints, ring: bool = False) -> Node:
    """``joints``: names (equal share) or (name, weight) pairs."""
    js = []
    for j in joints:
        if isinstance(j, str):
            js.append((J(j), 1.0 / len(joints)))
        else:
            js.append((J(j[0]), float(j[1])))
    return Node(np.asarray(p, dtype=float), tuple(js), ring)


# --------------------------------------------------------------------------------------
# The body parts.
# --------------------------------------------------------------------------------------
def torso() -> Shell:
    y_top = 0.272
    nodes = [
        node((0, -0.385, 0.015), "pelvis"),
        node(jp("pelvis"), "pelvis", ring=True),
        node(jp("spine1"), "spine1", ring=True),
        node(jp("spine2"), "spine2", ring=True),
        node(jp("spine3"), "spine3", ring=True),
        node((0, y_top, -0.005), ("spine3", 1 - _fy(y_top)), ("neck", _fy(y_top))),
    ]
    keys = [
        Key(-0.385, 0.085, 0.060, 2.2),
        Key(-0.36, 0.135, 0.088, 2.4),
        Key(-0.32, 0.165, 0.105, 2.5, (0, 0, -0.005)),
        Key(-0.27, 0.172, 0.108, 2.5, (0, 0, -0.004)),
        Key(-0.223, 0.165, 0.104, 2.5),
        Key(-0.16, 0.150, 0.098, 2.4),
        Key(-0.114, 0.143, 0.095, 2.4),
        Key(-0.05, 0.145, 0.098, 2.4),
        Key(0.015, 0.152, 0.104, 2.5),
        Key(0.073, 0.160, 0.108, 2.6),
        Key(0.13, 0.168, 0.104, 2.6, (0, 0, -0.012), g1=0.8),
        Key(0.18, 0.172, 0.092, 2.7, (0, 0, -0.022), g1=0.5),
        Key(0.22, 0.160, 0.078, 2.8, (0, 0, -0.025), g1=0.35),
        Key(0.25, 0.125, 0.066, 2.6, (0, 0, -0.02), g1=0.4),
        Key(y_top, 0.080, 0.055, 2.2, (0, 0, -0.01), g1=0.6),
    ]
    return loft("torso", nodes, keys, 36, X, du=0.025, caps=(0.025, 0.025), param="y", fixed_tangent=Y)


def _fy(y: float) -> float:
    """Share of the neck (vs spine3) in the motion of a torso point at height ``y``."""
    y3, yn = jp("spine3")[1], jp("neck")[1]
    return float(np.clip((y - y3) / (yn - y3), 0, 1))


def neck() -> Shell:
    base_y = 0.20
    n_, h = jp("neck"), jp("head")
    nodes = [
        node((0, base_y, -0.03), ("spine3", 1 - _fy(base_y)), ("neck", _fy(base_y))),
        node(n_, "neck", ring=True),
        node(h, "head", ring=True),
        node(h + 0.03 * unit(h - n_) + (0, 0.01, 0), "head"),
    ]
    u1 = np.linalg.norm(n_ - nodes[0].p)
    u2 = u1 + np.linalg.norm(h - n_)
    keys = [
        Key(0.0, 0.062, 0.064, 2.2, g1=0.6, g2=0.6),
        Key(u1, 0.055, 0.056, 2.2, g1=0.5, g2=0.5),
        Key(u2, 0.052, 0.052, 2.2, g1=0.3, g2=0.3),
        Key(u2 + 0.04, 0.048, 0.048, 2.2, g1=0.3, g2=0.3),
    ]
    # parallel sections tilted 11 degrees forward: the chain bends 40 degrees at the neck joint
    tilt = unit(np.array([0.0, 1.0, 0.2]))
    return loft("neck", nodes, keys, 20, X, du=0.02, caps=(0.03, 0.03), n_cap=3, fixed_tangent=tilt)


def head() -> Shell:
    # (y, z_front, z_back, half-width) of the head's horizontal sections
    prof = np.array([
        (0.298, 0.098, 0.030, 0.030),
        (0.310, 0.108, -0.005, 0.045),
        (0.335, 0.116, -0.040, 0.057),
        (0.365, 0.121, -0.068, 0.068),
        (0.395, 0.121, -0.083, 0.075),
        (0.425, 0.119, -0.088, 0.079),
        (0.455, 0.113, -0.085, 0.078),
        (0.480, 0.097, -0.071, 0.070),
        (0.498, 0.068, -0.048, 0.053),
    ])
    nodes = [node((0, y, 0.5 * (zf + zb)), "head") for y, zf, zb, _ in prof[[0, -1]]]
    keys = []
    for y, zf, zb, hw in prof:  # centre offset from the straight chin-to-crown line
        lin = np.interp(y, prof[[0, -1], 0], [nodes[0].p[2], nodes[1].p[2]])
        keys.append(Key(y, hw, 0.5 * (zf - zb), 2.3, (0, 0, 0.5 * (zf + zb) - lin), g1=0.25, g2=0.25))
    return loft("head", nodes, keys, 32, X, du=0.014, caps=(0.012, 0.017), param="y", fixed_tangent=Y, n_cap=5)


def ellipsoid(name: str, centre, radii, axis, ref, joint: str, n_ring: int = 12, n_sec: int = 5) -> Shell:
    """A small closed ellipsoid (nose, ears) moving rigidly with ``joint``."""
    c, axis = np.asarray(centre, float), unit(np.asarray(axis, float))
    a = radii[0]
    nodes = [node(c - 0.5 * a * axis, joint), node(c + 0.5 * a * axis, joint)]
    keys = [Key(0.0, radii[1] * 0.866, radii[2] * 0.866, 2.0), Key(a, radii[1] * 0.866, radii[2] * 0.866, 2.0)]
    return loft(name, nodes, keys, n_ring, np.asarray(ref, float), du=a / max(1, n_sec - 3),
                caps=(0.5 * a, 0.5 * a), n_cap=2)


def left_arm() -> Shell:
    c, s, e, w = jp("left_collar"), jp("left_shoulder"), jp("left_elbow"), jp("left_wrist")
    nodes = [
        node(c - 0.035 * unit(s - c), "left_collar"),
        node(c, "left_collar", ring=True),
        node(s, "left_shoulder", ring=True),
        node(e, "left_elbow", ring=True),
        node(w, "left_wrist", ring=True),
        node(w + 0.012 * unit(w - e), "left_wrist"),
    ]
    uc = 0.035
    us = uc + np.linalg.norm(s - c)
    ue = us + np.linalg.norm(e - s)
    uw = ue + np.linalg.norm(w - e)
    keys = [
        Key(0.0, 0.045, 0.050),
        Key(uc, 0.055, 0.060),
        Key(0.5 * (uc + us), 0.060, 0.062),
        Key(us, 0.058, 0.058),
        Key(us + 0.045, 0.053, 0.053),
        Key(us + 0.13, 0.046, 0.045, g1=0.9, g2=0.9),
        Key(ue - 0.03, 0.041, 0.042, g1=0.8, g2=0.8),
        Key(ue, 0.039, 0.042, g1=0.8, g2=0.8),
        Key(ue + 0.055, 0.042, 0.047, g1=0.8, g2=0.8),
        Key(ue + 0.16, 0.032, 0.040, g1=0.7, g2=0.7),
        Key(uw, 0.021, 0.031, 2.3, g1=0.5, g2=0.5),
        Key(uw + 0.012, 0.020, 0.030, 2.3, g1=0.5, g2=0.5),
    ]
    return loft("left_arm", nodes, keys, 18, Y, du=0.025, caps=(0.03, 0.012), n_cap=3, blend=0.035, blend_after=True)


def left_hand() -> Shell:
    w, hd = jp("left_wrist"), jp("left_hand")
    a = unit(hd - w)
    nodes = [
        node(w - 0.012 * a, "left_wrist"),
        node(w, "left_wrist"),
        node(hd, "left_hand", ring=True),
        node(hd + 0.085 * a, "left_hand"),
    ]
    uw, uh = 0.012, 0.012 + np.linalg.norm(hd - w)
    keys = [
        Key(0.0, 0.019, 0.030, 2.4, g1=0.4, g2=0.4),
        Key(uw, 0.020, 0.032, 2.6, g1=0.4, g2=0.4),
        Key(uw + 0.035, 0.019, 0.043, 3.0, g1=0.4, g2=0.4),
        Key(uh, 0.015, 0.045, 3.0, g1=0.4, g2=0.4),
        Key(uh + 0.04, 0.011, 0.043, 3.0, g1=0.4, g2=0.4),
        Key(uh + 0.085, 0.009, 0.036, 2.6, g1=0.4, g2=0.4),
    ]
    return loft("left_hand", nodes, keys, 16, Y, du=0.018, caps=(0.01, 0.014), n_cap=3, blend=0.02)


def left_thumb() -> Shell:
    w, hd = jp("left_wrist"), jp("left_hand")
    a = unit(hd - w)
    p0 = w + 0.02 * a + 0.022 * Z - 0.004 * Y
    p1 = w + 0.05 * a + 0.052 * Z - 0.010 * Y
    p2 = p1 + 0.04 * unit(0.75 * a + 0.65 * Z - 0.05 * Y)
    nodes = [node(p0, "left_wrist"), node(p1, "left_wrist"), node(p2, "left_wrist")]
    u1 = np.linalg.norm(p1 - p0)
    u2 = u1 + np.linalg.norm(p2 - p1)
    keys = [Key(0.0, 0.014, 0.016, g1=0.4, g2=0.4), Key(u1, 0.011, 0.012, g1=0.4, g2=0.4),
            Key(u2, 0.0085, 0.009, g1=0.4, g2=0.4)]
    return loft("left_thumb", nodes, keys, 10, Y, du=0.015, caps=(0.01, 0.009), n_cap=2, blend=0.015)


def left_leg() -> Shell:
    h, k, a = jp("left_hip"), jp("left_knee"), jp("left_ankle")
    top = h + 0.085 * unit(h - k)
    nodes = [
        node(top, "left_hip"),
        node(h, "left_hip", ring=True),
        node(k, "left_knee", ring=True),
        node(a, "left_ankle", ring=True),
        node(a + 0.025 * unit(a - k), "left_ankle"),
    ]
    uh = 0.085
    uk = uh + np.linalg.norm(k - h)
    ua = uk + np.linalg.norm(a - k)
    keys = [
        Key(0.0, 0.078, 0.078),
        Key(uh, 0.092, 0.090),
        Key(uh + 0.10, 0.088, 0.084),
        Key(uh + 0.21, 0.076, 0.071),
        Key(uk - 0.07, 0.062, 0.059),
        Key(uk, 0.057, 0.056),
        Key(uk + 0.10, 0.060, 0.053, 2.0, (0, 0, -0.012)),
        Key(uk + 0.25, 0.043, 0.039, 2.0, (0, 0, -0.004)),
        Key(ua, 0.036, 0.034, g1=0.6, g2=0.6),
        Key(ua + 0.025, 0.035, 0.033, g1=0.6, g2=0.6),
    ]
    return loft("left_leg", nodes, keys, 24, Z, du=0.04, caps=(0.05, 0.02), n_cap=3, blend=0.05)


def left_foot() -> Shell:
    f = jp("left_foot")
    heel = np.array([0.082, -1.145, -0.050])
    mid = np.array([0.097, -1.156, 0.025])
    toe = np.array([0.131, -1.172, 0.150])
    nodes = [node(heel, "left_ankle"), node(mid, "left_ankle"), node(f, "left_foot", ring=True),
             node(toe, "left_foot")]
    um = np.linalg.norm(mid - heel)
    uf = um + np.linalg.norm(f - mid)
    ut = uf + np.linalg.norm(toe - f)
    keys = [
        Key(0.0, 0.045, 0.031, 2.4, g1=0.0, g2=0.4),
        Key(0.03, 0.047, 0.037, 2.6, (0, 0.002, 0), g1=0.0, g2=0.4),
        Key(um, 0.036, 0.044, 2.8, g1=0.0, g2=0.4),
        Key(uf, 0.024, 0.048, 2.8, g1=0.0, g2=0.4),
        Key(uf + 0.03, 0.019, 0.045, 2.8, g1=0.0, g2=0.4),
        Key(ut, 0.017, 0.036, 2.5, g1=0.0, g2=0.4),
    ]
    return loft("left_foot", nodes, keys, 20, Y, du=0.02, caps=(0.035, 0.025), n_cap=3, blend=0.03)


# --------------------------------------------------------------------------------------
# Skinning weights.
# --------------------------------------------------------------------------------------
def chain_weights(u: np.ndarray, bones: list[int], bounds: list[float], widths: list[float]) -> np.ndarray:
    """(n, 24): bone ``bones[i]`` between ``bounds[i-1]`` and ``bounds[i]``, smooth switches."""
    steps = [smoothstep(u, b - w, b + w) for b, w in zip(bounds, widths)]
    W = np.zeros((len(u), NUM_JOINTS))
    ones = np.ones(len(u))
    for i, bone in enumerate(bones):
        lo = steps[i - 1] if i > 0 else ones
        hi = steps[i] if i < len(steps) else 0.0 * ones
        W[:, bone] += np.clip(lo - hi, 0.0, None)
    return W / W.sum(1, keepdims=True)


def _torso_weights(shell: Shell) -> np.ndarray:
    """Spine bones by height, blended into the collars at the shoulder tops and into the hips
    (up to 65 %) at the buttocks and groin."""
    u, v = shell.u, shell.verts
    W = chain_weights(u, [J("pelvis"), J("spine1"), J("spine2"), J("spine3")],
                      [jp("spine1")[1], jp("spine2")[1], jp("spine3")[1]], [0.04, 0.025, 0.025])
    left = smoothstep(v[:, 0], -0.02, 0.02)
    for a, b, share in (
        ("left_collar", "right_collar", smoothstep(np.abs(v[:, 0]), 0.05, 0.13) * smoothstep(v[:, 1], 0.10, 0.19)),
        ("left_hip", "right_hip", 0.65 * (1 - smoothstep(v[:, 1], -0.37, -0.26))),
    ):
        side = np.zeros_like(W)
        side[:, J(a)], side[:, J(b)] = left, 1 - left
        W = (1 - share[:, None]) * W + share[:, None] * side
    return W


# part: (bones along the chain, chain nodes where they switch, half-widths of the switches)
_CHAINS = {
    "neck": (("spine3", "neck", "head"), (1, 2), (0.03, 0.025)),
    "head": (("head",), (), ()),
    "nose": (("head",), (), ()),
    "ear": (("head",), (), ()),
    "arm": (("collar", "shoulder", "elbow", "wrist"), (2, 3, 4), (0.045, 0.035, 0.02)),
    "hand": (("wrist", "hand"), (2,), (0.02,)),
    "thumb": (("wrist",), (), ()),
    "leg": (("pelvis", "hip", "knee", "ankle"), (1, 2, 3), (0.06, 0.045, 0.03)),
    "foot": (("ankle", "foot"), (2,), (0.02,)),
}


def skin(shell: Shell) -> np.ndarray:
    """(n, 24) skinning weights of a shell."""
    if shell.name == "torso":
        return _torso_weights(shell)
    side, _, part = shell.name.rpartition("_")
    bones, switch_nodes, widths = _CHAINS[part]
    ids = [J(b) if b in JOINT_INDEX else J(f"{side}_{b}") for b in bones]
    return chain_weights(shell.u, ids, [float(shell.node_u[i]) for i in switch_nodes], list(widths))


# --------------------------------------------------------------------------------------
# Shape directions of the vertices.
# --------------------------------------------------------------------------------------
def chain_dirs(shell: Shell, dJ: np.ndarray) -> np.ndarray:
    """(n, 3, 10): each cross-section moves with its chain, interpolated between nodes."""
    node_d = np.stack([sum(w * dJ[j] for j, w in n.joints) for n in shell.nodes])  # (m, 3, 10)
    out = np.empty((len(shell.u), 3, NUM_BETAS))
    for c in range(3):
        for k in range(NUM_BETAS):
            out[:, c, k] = np.interp(shell.u, shell.node_u, node_d[:, c, k])
    return out


def girth_dir(shell: Shell) -> np.ndarray:
    """(n, 3): cross-section offsets scaled by 10 % (times the shell's girth factors)."""
    off = shell.verts - shell.centre
    e1, e2 = shell.frame[:, 1], shell.frame[:, 2]
    a1 = np.einsum("nc,nc->n", off, e1) * shell.girth[:, 0]
    a2 = np.einsum("nc,nc->n", off, e2) * shell.girth[:, 1]
    return GIRTH_PER_UNIT * (a1[:, None] * e1 + a2[:, None] * e2)


def torso_fields(shell: Shell, dJ: np.ndarray, d: np.ndarray) -> None:
    """Left/right-symmetric fields on the torso for shoulder width, hip width and neck length."""
    v = shell.verts
    ax, sx = np.abs(v[:, 0]), np.sign(v[:, 0])
    shoulder = dJ[J("left_shoulder"), :, 6]
    ramp = smoothstep(ax, 0.0, jp("left_shoulder")[0]) * smoothstep(v[:, 1], 0.075, 0.20)
    d[:, 0, 6] = sx * ramp * shoulder[0]
    d[:, 1, 6] = ramp * shoulder[1]
    d[:, 2, 6] = ramp * shoulder[2]
    # hip width: tanh keeps x -> x + dx monotonic down to beta 7 = -5
    d[:, 0, 7] = 0.015 * np.tanh(v[:, 0] / 0.09) * (1 - smoothstep(v[:, 1], -0.25, -0.10))
    d[:, 1:, 7] = 0.0
    # neck length: only around the neck base, not the shoulders
    d[:, :, 9] *= (1 - smoothstep(ax, 0.05, 0.11))[:, None]


def shape_dirs(shell: Shell, dJ: np.ndarray, centre: np.ndarray, scale: float) -> np.ndarray:
    d = chain_dirs(shell, dJ)
    d[:, :, 0] = scale * (shell.verts - centre)
    d[:, :, 1] = girth_dir(shell)
    if shell.name == "torso":
        torso_fields(shell, dJ, d)
    return d


# --------------------------------------------------------------------------------------
# Assembly.
# --------------------------------------------------------------------------------------
def mirror_shell(shell: Shell) -> Shell:
    """The right-side twin of a left shell: x -> -x, faces reversed, joints mirrored."""
    jm = np.asarray(MIRROR)
    flip = np.diag(FLIP)
    return Shell(
        name=shell.name.replace("left_", "right_"),
        verts=shell.verts * FLIP, faces=shell.faces[:, ::-1].copy(), u=shell.u.copy(),
        centre=shell.centre * FLIP, frame=shell.frame @ flip, girth=shell.girth.copy(),
        nodes=[Node(n.p * FLIP, tuple((int(jm[j]), w) for j, w in n.joints), n.is_ring) for n in shell.nodes],
        node_u=shell.node_u.copy(), rings={int(jm[j]): r for j, r in shell.rings.items()},
    )


def build_shells() -> list[Shell]:
    mid = [
        torso(), neck(), head(),
        ellipsoid("nose", (0, 0.383, 0.118), (0.028, 0.013, 0.020), (0, -0.45, 1), X, "head"),
    ]
    left = [
        left_leg(), left_foot(), left_arm(), left_hand(), left_thumb(),
        ellipsoid("left_ear", (0.080, 0.400, 0.002), (0.030, 0.018, 0.008), (0, 1, 0.15), Z, "head"),
    ]
    shells = mid + left + [mirror_shell(s) for s in left]
    for s in shells:
        s.weights = skin(s)
    return shells


def sole_centre(verts: np.ndarray) -> np.ndarray:
    """Point midway between the soles: x = 0, y = lowest vertex, z = middle of the feet."""
    low = verts[verts[:, 1] < verts[:, 1].min() + 0.005]
    return np.array([0.0, verts[:, 1].min(), 0.5 * (low[:, 2].min() + low[:, 2].max())])


def solve_regressor(ring: np.ndarray, verts: np.ndarray, dirs: np.ndarray, target: np.ndarray,
                    target_dirs: np.ndarray) -> np.ndarray:
    """Non-negative weights on ``ring`` summing to 1 that regress ``target`` and ``target_dirs``.

    Minimises the distance to uniform weights subject (heavily weighted) to the constraints.
    """
    n = len(ring)
    A = np.concatenate([verts[ring].T, dirs[ring].reshape(n, -1).T, np.ones((1, n))])  # (34, n)
    b = np.concatenate([target, target_dirs.reshape(-1), [1.0]])
    big, small = 1e4, 1e-3
    M = np.concatenate([big * A, small * np.eye(n)])
    rhs = np.concatenate([big * b, small * np.full(n, 1.0 / n)])
    w, _ = nnls(M, rhs, maxiter=50 * n)
    return w


def check_regressor(regressor: np.ndarray, verts: np.ndarray, dirs: np.ndarray, dJ: np.ndarray) -> None:
    """Every joint regressed, to 1 micrometre, at its design position and with its designed motion."""
    missing = [SMPL_JOINT_NAMES[j] for j in range(NUM_JOINTS) if not regressor[j].any()]
    assert not missing, f"no ring for {missing}"
    assert np.abs(regressor @ verts - J0).max() < 1e-6
    assert np.abs(np.einsum("jv,vck->jck", regressor, dirs) - dJ).max() < 1e-6


def build() -> dict[str, np.ndarray]:
    shells = build_shells()
    verts = np.concatenate([s.verts for s in shells])
    sc = sole_centre(verts)
    scale = STATURE_PER_UNIT / np.ptp(verts[:, 1])  # stature: uniform scale about the soles
    dJ = design_joint_dirs(sc, scale)
    for s in shells:
        s.dirs = shape_dirs(s, dJ, sc, scale)
    offsets = np.cumsum([0] + [len(s.verts) for s in shells])
    faces = np.concatenate([s.faces + o for s, o in zip(shells, offsets)])
    weights = np.concatenate([s.weights for s in shells])
    dirs = np.concatenate([s.dirs for s in shells])
    regressor = np.zeros((NUM_JOINTS, len(verts)))
    for s, o in zip(shells, offsets):
        for j, ring in s.rings.items():
            regressor[j, ring + o] = solve_regressor(ring + o, verts, dirs, J0[j], dJ[j])
    check_regressor(regressor, verts, dirs, dJ)
    kintree = np.stack([np.array([ROOT_PARENT if p < 0 else p for p in SMPL_PARENTS], dtype=np.int64),
                        np.arange(NUM_JOINTS, dtype=np.int64)])
    names, ids = landmarks(shells, offsets)
    return {
        "v_template": verts.astype(np.float32),
        "f": faces.astype(np.int32),
        "shapedirs": dirs.astype(np.float32),
        "posedirs": np.zeros((len(verts), 3, NUM_POSE_BASIS), dtype=np.float32),
        "J_regressor": regressor.astype(np.float32),
        "weights": weights.astype(np.float32),
        "kintree_table": kintree,
        "landmark_names": np.array(names),
        "landmark_vertex_ids": np.array(ids, dtype=np.int64),
    }


def _nearest(shells: list[Shell], offsets, name: str, point) -> int:
    i = [s.name for s in shells].index(name)
    d = np.linalg.norm(shells[i].verts - np.asarray(point, float), axis=1)
    return int(offsets[i] + np.argmin(d))


def landmarks(shells: list[Shell], offsets) -> tuple[list[str], list[int]]:
    """Surface points with smplx's ``vertex_ids`` names (nose, eyes, ears, toes, heels, fingertips)."""
    out = {"nose": _nearest(shells, offsets, "nose", (0, 0.37, 0.16))}
    for side, sx in (("l", 1.0), ("r", -1.0)):
        full = "left" if side == "l" else "right"
        out[f"{side}eye"] = _nearest(shells, offsets, "head", (sx * 0.032, 0.418, 0.13))
        out[f"{side}ear"] = _nearest(shells, offsets, f"{full}_ear", (sx * 0.095, 0.40, 0.0))
        foot = side.upper()
        out[f"{foot}BigToe"] = _nearest(shells, offsets, f"{full}_foot", (sx * 0.115, -1.175, 0.19))
        out[f"{foot}SmallToe"] = _nearest(shells, offsets, f"{full}_foot", (sx * 0.165, -1.175, 0.16))
        out[f"{foot}Heel"] = _nearest(shells, offsets, f"{full}_foot", (sx * 0.082, -1.19, -0.09))
        tip = jp("left_hand") * np.array([sx, 1, 1]) + np.array([sx * 0.10, -0.012, 0.0])
        out[f"{side}thumb"] = _nearest(shells, offsets, f"{full}_thumb", tip + (sx * -0.04, 0, 0.12))
        for name, dz in (("index", 0.03), ("middle", 0.01), ("ring", -0.01), ("pinky", -0.03)):
            out[f"{side}{name}"] = _nearest(shells, offsets, f"{full}_hand", tip + (0, 0, dz))
    return list(out), list(out.values())


def main() -> None:
    arrays = build()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    digest = hashlib.sha256(OUT.read_bytes()).hexdigest()[:16]
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB, sha256 {digest}): "
          f"{len(arrays['v_template'])} vertices, {len(arrays['f'])} faces")


if __name__ == "__main__":
    main()
