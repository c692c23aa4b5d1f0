"""Keypoint sets: ``smpl24`` and the derived ``h36m17`` and ``coco17``, with their derivations.

Each keypoint of a set is a fixed weighted sum of *sources*: SMPL joints (by name) and named
body-model surface vertices (``"vertex:<landmark>"``).  Landmark vertices come from
``BodyModel.landmarks`` (smplx's ``vertex_ids`` naming: ``nose``, ``leye``, ``reye``, ``lear``,
``rear``, ...) or, for ``head_top``, from the model's rest mesh (``landmark_vertex_id``).  Only
the landmark vertices a request needs are skinned (``BodyModel.skin_vertices``); the mesh never is.

Derivations
-----------
``smpl24``: SMPL's 24 joints, SMPL's order (``posesynth.skeleton``).

``h36m17`` (Human3.6M / VideoPose3D order, the names of ``posesynth/rigs/h36m17.toml``):
  pelvis = midpoint of the SMPL hips (Human3.6M's root sits between its hip joints, at their
  height; SMPL's pelvis joint is about 9 cm higher); right/left hip, knee, ankle, shoulder, elbow,
  wrist = the SMPL joints of the same name; spine = SMPL spine2 (mid-torso); thorax = SMPL neck
  (base of the neck); neck_nose = SMPL head (the head's pivot, between chin and nose);
  head = the head-top vertex.  These are the inverse of the h36m17 rig map used to retarget
  Human3.6M keypoints (``spine2 <- spine``, ``neck <- thorax``, ``head <- neck_nose``), so a
  Human3.6M pose retargeted and re-derived lands on its own keypoints, bar the head top.

``coco17`` (COCO order): nose, eyes and ears = body-model landmark vertices (``nose``, ``leye``,
  ``reye``, ``lear``, ``rear``); shoulders, elbows, wrists, hips, knees, ankles = the SMPL joints
  of the same name (COCO annotates the visible limb centre at those joints; SMPL's hip joints
  sit a little higher and closer together than COCO's annotated hips).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from posesynth.body_model import BodyModel
from posesynth.errors import PosesynthError
from posesynth.skeleton import JOINT_INDEX, NUM_JOINTS, SMPL_JOINT_NAMES, SMPL_PARENTS

VERTEX = "vertex:"
Source = tuple[tuple[str, float], ...]  # (joint name or "vertex:<landmark>", weight) pairs


class KeypointSetError(PosesynthError, ValueError):
    """An unknown keypoint set, or one the body model cannot give; the message names it."""


@dataclass(frozen=True)
class KeypointSet:
    """A named, ordered set of keypoints and how each is derived from the body."""

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...] | None  # a tree (root -1) when the set has one
    edges: tuple[tuple[int, int], ...]  # pairs to draw as the skeleton
    derivation: str
    sources: tuple[Source, ...]  # per keypoint

    def __post_init__(self) -> None:
        if len(self.sources) != len(self.joint_names):
            raise ValueError(f"{self.name}: {len(self.sources)} sources for {len(self.joint_names)} keypoints")
        for src in self.sources:
            for s, _ in src:
                if not s.startswith(VERTEX) and s not in JOINT_INDEX:
                    raise ValueError(f"{self.name}: unknown source {s!r}")

    def __len__(self) -> int:
        return len(self.joint_names)

    @property
    def needs_vertices(self) -> tuple[str, ...]:
        """Landmark names whose vertices this set needs, in first-use order."""
        out: list[str] = []
        for src in self.sources:
            out += [s[len(VERTEX):] for s, _ in src if s.startswith(VERTEX) and s[len(VERTEX):] not in out]
        return tuple(out)

    @property
    def surface(self) -> tuple[bool, ...]:
        """Per keypoint: True when it lies on the body's surface (a vertex), False when inside."""
        return tuple(any(s.startswith(VERTEX) for s, _ in src) for src in self.sources)

    @property
    def mirror_pairs(self) -> tuple[tuple[int, int], ...]:
        """Index pairs ``(left_x, right_x)`` of left/right partners."""
        index = {n: i for i, n in enumerate(self.joint_names)}
        return tuple((i, index["right_" + n[5:]]) for i, n in enumerate(self.joint_names)
                     if n.startswith("left_") and "right_" + n[5:] in index)

    def weights(self, landmarks: Sequence[str]) -> torch.Tensor:
        """(J, 24 + L) float64 matrix mapping [24 SMPL joints; the ``landmarks`` vertices] to keypoints."""
        col = {n: i for i, n in enumerate(SMPL_JOINT_NAMES)}
        col.update({VERTEX + n: NUM_JOINTS + i for i, n in enumerate(landmarks)})
        W = torch.zeros(len(self), NUM_JOINTS + len(landmarks), dtype=torch.float64)
        for k, src in enumerate(self.sources):
            for s, w in src:
                W[k, col[s]] += w
        return W

    def to_attrs(self) -> dict:
        """What a store's ``keypoint_sets`` attribute holds for this set (JSON-ready)."""
        return {"joint_names": list(self.joint_names),
                "parents": None if self.parents is None else list(self.parents),
                "edges": [list(e) for e in self.edges], "derivation": self.derivation}


def _edges(parents: Sequence[int]) -> tuple[tuple[int, int], ...]:
    return tuple((p, c) for c, p in enumerate(parents) if p >= 0)


def _joint(name: str) -> Source:
    return ((name, 1.0),)


_SMPL24 = KeypointSet(
    name="smpl24", joint_names=SMPL_JOINT_NAMES, parents=SMPL_PARENTS, edges=_edges(SMPL_PARENTS),
    derivation="SMPL's 24 joints (the body model's J_regressor applied to the shaped rest mesh, "
               "then forward kinematics), SMPL's order.",
    sources=tuple(_joint(n) for n in SMPL_JOINT_NAMES),
)

_H36M_PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
_H36M17 = KeypointSet(
    name="h36m17",
    joint_names=("pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
                 "spine", "thorax", "neck_nose", "head", "left_shoulder", "left_elbow", "left_wrist",
                 "right_shoulder", "right_elbow", "right_wrist"),
    parents=_H36M_PARENTS, edges=_edges(_H36M_PARENTS),
    derivation="Human3.6M 17 joints (VideoPose3D order) from SMPL joints: pelvis = midpoint of "
               "left_hip and right_hip; hips, knees, ankles, shoulders, elbows, wrists = the SMPL joints; "
               "spine = spine2; thorax = neck; neck_nose = head (SMPL's head joint); head = head-top vertex "
               "(the highest rest-pose vertex skinned mostly to the head). Inverse of the h36m17 rig map.",
    sources=(
        (("left_hip", 0.5), ("right_hip", 0.5)),
        _joint("right_hip"), _joint("right_knee"), _joint("right_ankle"),
        _joint("left_hip"), _joint("left_knee"), _joint("left_ankle"),
        _joint("spine2"), _joint("neck"), _joint("head"), ((VERTEX + "head_top", 1.0),),
        _joint("left_shoulder"), _joint("left_elbow"), _joint("left_wrist"),
        _joint("right_shoulder"), _joint("right_elbow"), _joint("right_wrist"),
    ),
)

_COCO_NAMES = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
               "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
               "left_knee", "right_knee", "left_ankle", "right_ankle")
_COCO_FACE = {"nose": "nose", "left_eye": "leye", "right_eye": "reye", "left_ear": "lear", "right_ear": "rear"}
_COCO17 = KeypointSet(
    name="coco17", joint_names=_COCO_NAMES, parents=None,
    edges=((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
           (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6)),
    derivation="COCO 17 keypoints: nose, eyes, ears = body-model surface vertices (landmarks nose, "
               "leye, reye, lear, rear, smplx vertex_ids naming); shoulders, elbows, wrists, hips, knees, "
               "ankles = the SMPL joints of the same name.",
    sources=tuple(((VERTEX + _COCO_FACE[n], 1.0),) if n in _COCO_FACE else _joint(n) for n in _COCO_NAMES),
)

KEYPOINT_SETS: dict[str, KeypointSet] = {s.name: s for s in (_SMPL24, _H36M17, _COCO17)}


# ---------------------------------------------------------------------------- landmarks
_DERIVED_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _head_top(body: BodyModel) -> int:
    """The highest rest-pose vertex among those skinned mostly to the head joint."""
    head = JOINT_INDEX["head"]
    on_head = body.smpl.lbs_weights.argmax(1) == head
    y = torch.where(on_head, body.smpl.v_template[:, 1], torch.full_like(body.smpl.v_template[:, 1], -torch.inf))
    return int(y.argmax())


def landmark_vertex_id(body: BodyModel, name: str) -> int:
    """Vertex index of a named landmark: ``body.landmarks`` first, then derived ones (``head_top``)."""
    if name in body.landmarks:
        return int(body.landmarks[name])
    if name == "head_top":
        cache = _DERIVED_CACHE.setdefault(body, {})
        if name not in cache:
            cache[name] = _head_top(body)
        return cache[name]
    raise KeypointSetError(f"body model {body.identity} has no landmark {name!r}; it has {sorted(body.landmarks)} "
                     "and head_top")


def keypoint_sets(names: Sequence[str]) -> list[KeypointSet]:
    """The sets named, in order; KeypointSetError (a ValueError) naming an unknown one."""
    if isinstance(names, str):
        names = [names]
    unknown = [n for n in names if n not in KEYPOINT_SETS]
    if unknown:
        raise KeypointSetError(f"unknown keypoint set(s) {unknown}; known: {sorted(KEYPOINT_SETS)}")
    return [KEYPOINT_SETS[n] for n in names]


def compute_keypoints(
    names: Sequence[str],
    body: BodyModel,
    global_rotmats: torch.Tensor,
    joints: torch.Tensor,
    betas: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """World keypoints of each named set.

    Args:
        names: keypoint set names (``KEYPOINT_SETS``).
        body: the body model the pose was posed with.
        global_rotmats: (B, 24, 3, 3) global joint rotations.
        joints: (B, 24, 3) posed world joints (translation included).
        betas: (B, K) shape.

    Returns:
        ``{name: (B, J, 3)}`` in ``joints``' dtype and device.  The landmark vertices all sets need
        are skinned in one ``BodyModel.skin_vertices`` call; nothing else of the mesh is computed.
    """
    sets = keypoint_sets(names)
    if joints.dim() != 3 or joints.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"joints must be (B, 24, 3), got {tuple(joints.shape)}")
    landmarks: list[str] = []
    for s in sets:
        landmarks += [n for n in s.needs_vertices if n not in landmarks]
    sources = joints
    if landmarks:
        ids = [landmark_vertex_id(body, n) for n in landmarks]
        sources = torch.cat([joints, body.skin_vertices(ids, global_rotmats, joints, betas)], dim=1)
    return {s.name: torch.einsum("js,bsc->bjc", s.weights(landmarks).to(joints.device, joints.dtype), sources)
            for s in sets}
