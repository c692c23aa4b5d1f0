"""The canonical skeleton: SMPL's 24-joint kinematic tree.

Joint names and order are SMPL's.  ``SMPL_PARENTS[j]`` is the parent of joint ``j``
(-1 for the root).  Parents always come before their children, so a single pass
over the joints in order visits every parent first.

Bone lengths and rest positions are *not* defined here: they come from the body
model (``posesynth.body_model``), which turns ``betas`` into rest joints.
"""

from __future__ import annotations

SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hand",
    "right_hand",
)

SMPL_PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21,
)

NUM_JOINTS = len(SMPL_JOINT_NAMES)  # 24
NUM_BODY_JOINTS = NUM_JOINTS - 1  # 23: every joint but the root carries body_pose
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}


def mirror_index() -> tuple[int, ...]:
    """For each joint, the index of its left/right mirror (itself on the midline)."""
    out = []
    for name in SMPL_JOINT_NAMES:
        if name.startswith("left_"):
            out.append(JOINT_INDEX["right_" + name[5:]])
        elif name.startswith("right_"):
            out.append(JOINT_INDEX["left_" + name[6:]])
        else:
            out.append(JOINT_INDEX[name])
    return tuple(out)


def children(parents: tuple[int, ...] = SMPL_PARENTS) -> list[list[int]]:
    """``children(parents)[j]`` lists the joints whose parent is ``j``."""
    kids: list[list[int]] = [[] for _ in parents]
    for j, p in enumerate(parents):
        if p >= 0:
            kids[p].append(j)
    return kids


# Limbs used by retargeting checks and plausibility metrics: (name, proximal, distal).
LIMBS: tuple[tuple[str, str, str], ...] = (
    ("left_thigh", "left_hip", "left_knee"),
    ("right_thigh", "right_hip", "right_knee"),
    ("left_shank", "left_knee", "left_ankle"),
    ("right_shank", "right_knee", "right_ankle"),
    ("left_upper_arm", "left_shoulder", "left_elbow"),
    ("right_upper_arm", "right_shoulder", "right_elbow"),
    ("left_forearm", "left_elbow", "left_wrist"),
    ("right_forearm", "right_elbow", "right_wrist"),
)

# The joints every source rig shares with SMPL, used to measure retargeting error.
SHARED_JOINTS: tuple[str, ...] = (
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "neck", "head",
)
