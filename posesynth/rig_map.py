"""Joint maps from a source rig (a mocap skeleton or a keypoint layout) to SMPL's tree.

A rig map is a small TOML file (see ``posesynth/rigs/``)::

    [rig]
    name = "bandai"
    signature = ["Hips", "Spine", ...]      # joints that identify the rig
    joint_names = [...]                     # only for keypoint layouts without names

    [joints]                                # where each SMPL joint sits on the source
    left_knee = "LowerLeg_L"                # at a source joint
    spine2 = { between = ["Spine", "Chest"], at = 0.5 }   # or between two of them

    [frames]                                # optional: whose rotation gives the twist
    spine2 = "Spine"

A ``[joints]`` entry that names one joint also names that joint's frame unless
``[frames]`` says otherwise; a ``between`` entry has a frame only through ``[frames]``.
SMPL joints with no entry are placed by the body model alone.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posesynth.errors import PosesynthError
from posesynth.resources import packaged_path
from posesynth.skeleton import JOINT_INDEX, NUM_JOINTS, SMPL_JOINT_NAMES

RIGS_DIR = packaged_path("rigs")


class RigMapError(PosesynthError, ValueError):
    """A rig map file is malformed or does not fit the skeleton it is used with."""


@dataclass(frozen=True)
class RigMap:
    name: str
    description: str
    signature: tuple[str, ...]
    joints: dict[str, tuple[str, str, float]]  # SMPL joint -> (source a, source b, t)
    frames: dict[str, str]  # SMPL joint -> source joint whose rotation carries the twist
    joint_names: tuple[str, ...] | None = None  # keypoint layouts: the names of array columns
    source: str = ""

    def bind(self, source_joint_names: tuple[str, ...] | list[str]) -> BoundRig:
        """Resolve names to column indices of a skeleton with these joint names."""
        index = {n: i for i, n in enumerate(source_joint_names)}

        def find(name: str) -> int:
            if name not in index:
                raise RigMapError(
                    f"rig map {self.name!r} ({self.source}) names source joint {name!r}, "
                    f"which this skeleton does not have; it has: {', '.join(source_joint_names)}"
                )
            return index[name]

        a = np.zeros(NUM_JOINTS, dtype=np.int64)
        b = np.zeros(NUM_JOINTS, dtype=np.int64)
        t = np.zeros(NUM_JOINTS)
        has_target = np.zeros(NUM_JOINTS, dtype=bool)
        frame = np.full(NUM_JOINTS, -1, dtype=np.int64)
        for smpl_name, (ja, jb, at) in self.joints.items():
            j = JOINT_INDEX[smpl_name]
            a[j], b[j], t[j], has_target[j] = find(ja), find(jb), at, True
        for smpl_name, src in self.frames.items():
            frame[JOINT_INDEX[smpl_name]] = find(src)
        return BoundRig(self, a, b, t, has_target, frame)

    def matches(self, source_joint_names) -> bool:
        return set(self.signature) <= set(source_joint_names)


@dataclass(frozen=True)
class BoundRig:
    """A rig map resolved against one skeleton's joint order."""

    rig: RigMap
    a: np.ndarray  # (24,) source index of each SMPL joint's first anchor
    b: np.ndarray  # (24,) second anchor (equal to a for a plain joint)
    t: np.ndarray  # (24,) blend: position = (1 - t) * P[a] + t * P[b]
    has_target: np.ndarray  # (24,) bool
    frame: np.ndarray  # (24,) source joint giving the twist, -1 for none

    def targets(self, positions: np.ndarray) -> np.ndarray:
        """Source positions (T, Js, 3) -> SMPL joint targets (T, 24, 3), NaN where unmapped."""
        t = self.t[None, :, None]
        out = (1.0 - t) * positions[:, self.a] + t * positions[:, self.b]
        out[:, ~self.has_target] = np.nan
        return out

    def frame_rotations(self, rotations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Source global rotations (T, Js, 3, 3) -> (T, 24, 3, 3) twist frames and a (24,) mask."""
        mask = self.frame >= 0
        out = np.broadcast_to(np.eye(3), (rotations.shape[0], NUM_JOINTS, 3, 3)).copy()
        out[:, mask] = rotations[:, self.frame[mask]]
        return out, mask


def _parse_entry(path: str, smpl_name: str, value) -> tuple[str, str, float]:
    if isinstance(value, str):
        return value, value, 0.0
    if isinstance(value, dict) and set(value) == {"between", "at"}:
        pair, at = value["between"], value["at"]
        if isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair):
            if isinstance(at, (int, float)) and 0.0 <= at <= 1.0:
                return pair[0], pair[1], float(at)
    raise RigMapError(
        f"{path}: [joints].{smpl_name} must be a joint name or "
        f'{{ between = ["A", "B"], at = 0..1 }}, got {value!r}'
    )


def parse_rig_map(text: str, source: str = "<string>") -> RigMap:
    """Parse the TOML text of a rig map; errors name ``source`` and the bad entry."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RigMapError(f"{source}: not valid TOML: {exc}") from None
    rig = doc.get("rig", {})
    if "name" not in rig or "joints" not in doc:
        raise RigMapError(f"{source}: a rig map needs [rig] name = ... and a [joints] table")
    for table in ("joints", "frames"):
        unknown = sorted(set(doc.get(table, {})) - set(SMPL_JOINT_NAMES))
        if unknown:
            raise RigMapError(f"{source}: [{table}] names {unknown}, which are not SMPL joints")
    joints = {k: _parse_entry(source, k, v) for k, v in doc["joints"].items()}
    frames = {k: a for k, (a, b, _) in joints.items() if a == b}
    frames.update(doc.get("frames", {}))
    names = rig.get("joint_names")
    return RigMap(
        name=rig["name"],
        description=rig.get("description", ""),
        signature=tuple(rig.get("signature", ())),
        joints=joints,
        frames=frames,
        joint_names=tuple(names) if names else None,
        source=source,
    )


def builtin_rig_names() -> list[str]:
    return sorted(p.stem for p in RIGS_DIR.glob("*.toml"))


def load_rig_map(name_or_path: str | Path) -> RigMap:
    """A built-in rig by name (``hdm05``, ``bandai``, ``cmu_bvh``, ``h36m17``) or a TOML path."""
    path = Path(name_or_path)
    if path.suffix == ".toml":
        if not path.is_file():
            raise RigMapError(f"{path}: rig map file not found")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RigMapError(f"{path}: not a readable rig map (TOML text): {exc}") from None
        return parse_rig_map(text, str(path))
    name = str(name_or_path)
    if name not in builtin_rig_names():
        raise RigMapError(f"unknown rig {name!r}; built-in rigs: {', '.join(builtin_rig_names())}")
    return parse_rig_map((RIGS_DIR / f"{name}.toml").read_text(encoding="utf-8"), f"posesynth/rigs/{name}.toml")


def detect_rig(source_joint_names, where: str = "") -> RigMap:
    """The first built-in rig whose signature joints all appear in ``source_joint_names``."""
    for name in builtin_rig_names():
        rig = load_rig_map(name)
        if rig.signature and rig.matches(source_joint_names):
            return rig
    raise RigMapError(
        f"{where}: no built-in rig map fits this skeleton (joints: {', '.join(source_joint_names)}); "
        "write a joint-name map (see posesynth/rigs/*.toml) and pass it with --rig PATH"
    )
