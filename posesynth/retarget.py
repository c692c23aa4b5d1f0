"""Retargeting a source skeleton's motion onto SMPL's 24-joint tree.

Given per-frame source joint positions (and, for mocap, each joint's global
rotation) and a rig map (``posesynth.rig_map``), ``retarget`` returns SMPL
parameters whose forward kinematics, with per-subject ``betas``, reproduce the
source motion:

1. **Targets.** The rig map places each SMPL joint on the source skeleton: at a
   source joint, or between two (``(T, 24, 3)``, NaN where unmapped).
2. **Shape.** ``fit_betas`` chooses betas so the body model's bone lengths (and
   hip width) match the subject's median lengths.  Rigs disagree on where shoulders and hips sit
   (shoulder width 0.20 m on Bandai, 0.41-0.51 m on HDM05); we keep the rig's
   joints where they are and let the body model's shoulder-width and hip-width
   shape directions follow, so no source joint is moved.
3. **Rotations.** Walking the tree from the root, each joint's global frame is
   turned so its bone points exactly at its child's target ("aiming").  The
   pelvis and spine3, which have several children, are solved from two
   directions (TRIAD: hip line + spine, neck + shoulder line).  Twist about a
   bone comes from the source joint's own rotation (``[frames]`` in the rig
   map) through a constant offset, calibrated per file so that joint's mean
   rotation relative to its parent is the identity; positions-only sources take
   the twist of the parent's frame (the head: of spine3's, see ``_global_frames``).
4. **Translation.** Chosen so the midpoint of the hips matches the source's,
   which keeps feet on the source's floor whatever the pelvis placement.

Errors left are those of bone lengths the 10-dimensional shape space cannot
express; ``retarget_errors`` measures them (root-aligned on the hip midpoint).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import least_squares

from posesynth.kinematics import forward_kinematics, global_to_local
from posesynth.rotations import project_to_so3, rotation_between
from posesynth.skeleton import (
    JOINT_INDEX,
    LIMBS,
    NUM_JOINTS,
    SHARED_JOINTS,
    SMPL_PARENTS,
    children,
)

_J = JOINT_INDEX
_DTYPE = torch.float64

# Lengths that fix the body's proportions: (path of joints, weight); a path's length is
# the sum of its segments.  Retargeting aims every bone from where forward kinematics
# put its joint, so what must match to place the shared joints is the length of each
# chain leading to them, not of every bone in it.  All are rigid on a real skeleton, so
# their medians over frames are the subject's.  "hip_centre" is the midpoint of the
# hips; bones leaving the pelvis are not used because rigs place the pelvis joint at
# different heights, which the hip-centre root absorbs.
_PROPORTIONS: tuple[tuple[tuple[str, ...], float], ...] = (
    (("left_hip", "right_hip"), 1.0),
    (("hip_centre", "spine1", "spine2", "spine3", "neck"), 2.0),
    (("neck", "head"), 1.0),
    (("spine3", "left_shoulder"), 1.0),
    (("spine3", "right_shoulder"), 1.0),
    *(((side + a, side + b), w) for side in ("left_", "right_") for a, b, w in (
        ("hip", "knee", 1.0), ("knee", "ankle", 1.0), ("ankle", "foot", 0.5),
        ("shoulder", "elbow", 1.0), ("elbow", "wrist", 1.0), ("wrist", "hand", 0.5))),
)


@dataclass(frozen=True)
class Retargeted:
    """SMPL parameters for T frames (float64 tensors)."""

    global_orient: torch.Tensor  # (T, 3, 3)
    body_pose: torch.Tensor  # (T, 23, 3, 3) local rotations of joints 1..23
    transl: torch.Tensor  # (T, 3) world translation, SMPL's ``transl``
    betas: torch.Tensor  # (K,) per-subject shape
    joints: torch.Tensor  # (T, 24, 3) world joints of the retargeted pose
    targets: torch.Tensor  # (T, 24, 3) where the source puts each joint (NaN: unmapped)


def _point_weights(name: str) -> np.ndarray:
    w = np.zeros(NUM_JOINTS)
    if name == "hip_centre":
        w[[_J["left_hip"], _J["right_hip"]]] = 0.5
    else:
        w[_J[name]] = 1.0
    return w


def fit_betas(targets: np.ndarray, template: np.ndarray, joint_dirs: np.ndarray, *,
              sample_frames: int = 64, ridge: float = 1e-6) -> np.ndarray:
    """Betas that make retargeting reproduce the subject's shared joints best.

    First the chain lengths of ``_PROPORTIONS`` are matched (a good start), then the
    betas are refined by least squares on the shared-joint error of the retargeted
    pose itself, over ``sample_frames`` frames spread through the clip, keeping the
    chain-length residuals and a small ridge in the objective: the shared joints do
    not pin the feet, hands or head, and without those terms stature trades freely
    against the limb lengths into absurd bodies.

    Args:
        targets: (T, 24, 3) source targets in metres, NaN where unmapped.
        template: (24, 3) rest joints at zero betas; joint_dirs: (24, 3, K) their change
            per unit of each beta (rest joints are linear in betas).
    Returns:
        betas (K,).
    """
    chains = _chain_residual(targets, template, joint_dirs)
    start = least_squares(lambda b: np.concatenate([chains(b), np.sqrt(ridge) * b]),
                          np.zeros(joint_dirs.shape[-1]), method="lm").x
    T = targets.shape[0]
    sample = torch.as_tensor(targets[np.unique(np.linspace(0, T - 1, min(T, sample_frames)).astype(int))])
    has = np.isfinite(targets).all(axis=(0, 2))
    shared = [_J[n] for n in SHARED_JOINTS if has[_J[n]]]
    template_t, dirs_t = torch.as_tensor(template), torch.as_tensor(joint_dirs)
    goal = _hip_centred(sample)[:, shared]

    def residual(beta: np.ndarray) -> np.ndarray:
        rest = template_t + dirs_t @ torch.as_tensor(beta)
        _, joints = forward_kinematics(global_to_local(_global_frames(sample, rest, has, None)), rest)
        err = (_hip_centred(joints)[:, shared] - goal).reshape(-1).numpy()
        return np.concatenate([err / np.sqrt(len(err)), chains(beta), np.sqrt(ridge) * beta])

    return least_squares(residual, start, method="lm").x


def _hip_midpoint(x: torch.Tensor) -> torch.Tensor:
    """Midpoint of the hips (..., 3) of joints (..., 24, 3)."""
    return 0.5 * (x[..., _J["left_hip"], :] + x[..., _J["right_hip"], :])


def _hip_centred(x: torch.Tensor) -> torch.Tensor:
    """(T, 24, 3) joints relative to the midpoint of the hips."""
    return x - _hip_midpoint(x)[:, None]


def _chain_residual(targets: np.ndarray, template: np.ndarray, joint_dirs: np.ndarray):
    """A function betas (K,) -> weighted differences (P,) between the body's chain lengths
    (``_PROPORTIONS``) and the targets' median chain lengths, in metres."""
    segments, lengths, weights = [], [], []
    for path, w in _PROPORTIONS:
        points = np.stack([_point_weights(n) for n in path])  # (L, 24)
        used = (points != 0).any(0)
        if not np.isfinite(targets[:, used]).all():
            continue
        steps = points[1:] - points[:-1]  # (L-1, 24)
        src = np.einsum("sj,tjc->tsc", steps[:, used], targets[:, used])
        segments.append(steps)
        lengths.append(float(np.median(np.linalg.norm(src, axis=-1).sum(-1))))
        weights.append(np.sqrt(w))
    if not segments:
        raise ValueError("no joint distances to fit betas to: the rig map maps too few joints")
    lengths_a, weights_a = np.array(lengths), np.array(weights)

    def residual(beta: np.ndarray) -> np.ndarray:
        rest = template + joint_dirs @ beta
        return weights_a * (np.array([np.linalg.norm(s @ rest, axis=-1).sum() for s in segments]) - lengths_a)

    return residual


def _triad(p_src: torch.Tensor, s_src: torch.Tensor, p_rest: torch.Tensor, s_rest: torch.Tensor) -> torch.Tensor:
    """Rotation (T, 3, 3) taking rest direction p_rest exactly onto p_src, and s_rest as
    close as possible onto s_src.  p_src, s_src: (T, 3); p_rest, s_rest: (3,)."""

    def frame(p: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        e1 = torch.nn.functional.normalize(p, dim=-1)
        e3 = torch.nn.functional.normalize(torch.linalg.cross(e1, s.expand_as(e1)), dim=-1)
        return torch.stack([e1, torch.linalg.cross(e3, e1), e3], dim=-1)

    return frame(p_src, s_src) @ frame(p_rest.expand_as(p_src), s_rest.expand_as(s_src)).transpose(-1, -2)


def _aim(frame: torch.Tensor, rest_dir: torch.Tensor, target_dir: torch.Tensor) -> torch.Tensor:
    """Turn ``frame`` (T, 3, 3) by the least rotation that points ``frame @ rest_dir`` along
    ``target_dir`` (T, 3); frames whose target is degenerate are kept as they are."""
    ok = target_dir.norm(dim=-1, keepdim=True) > 1e-9
    safe = torch.where(ok, target_dir, frame @ rest_dir)
    return rotation_between(frame @ rest_dir, safe) @ frame


def _primary_child(j: int, has_target: np.ndarray) -> int | None:
    kids = [c for c in children()[j] if has_target[c]]
    if j == _J["spine3"]:
        return _J["neck"] if has_target[_J["neck"]] else None
    return kids[0] if len(kids) == 1 else None


def _global_frames(
    targets: torch.Tensor,
    rest: torch.Tensor,
    has: np.ndarray,
    frames: tuple[torch.Tensor, np.ndarray] | None,
) -> torch.Tensor:
    """Global rotation (T, 24, 3, 3) of each SMPL joint; see the module docstring.

    Each joint starts from a reference frame: its parent's final frame, except the
    head, which starts from spine3's.  The neck bone is where rigs differ most (SMPL's
    head joint sits forward of the neck, Bandai's above it), so the neck bends to
    reach the head joint and the head must not inherit that bend.  With a source
    rotation, the start is that rotation through a constant offset, calibrated so
    its mean rotation relative to the reference is the identity.  The start is then
    aimed at the child's target.

    Bones are aimed from where forward kinematics has put the joint so far (not from
    the joint's own target), so each aim also corrects the error its parents left and
    only bone-length differences remain.
    """
    T = targets.shape[0]
    eye = torch.eye(3, dtype=_DTYPE).expand(T, 3, 3)
    G: list[torch.Tensor] = []
    pos: list[torch.Tensor] = []
    for j, p in enumerate(SMPL_PARENTS):
        if p < 0:
            G.append(_multi_child_frame(j, targets, rest) if _triad_inputs_present(j, has) else eye)
            pos.append(_hip_midpoint(targets) - G[0] @ (_hip_midpoint(rest) - rest[j]))
            continue
        pos.append(pos[p] + G[p] @ (rest[j] - rest[p]))
        if j == _J["spine3"] and _triad_inputs_present(j, has):
            G.append(_multi_child_frame(j, targets, rest, origin=pos[j]))
            continue
        start = G[_J["spine3"]] if j == _J["head"] else G[p]
        if frames is not None and frames[1][j]:
            src = frames[0][:, j]
            start = src @ project_to_so3((src.transpose(-1, -2) @ start).mean(0))
        c = _primary_child(j, has) if has[j] else None
        G.append(start if c is None else _aim(start, rest[c] - rest[j], targets[:, c] - pos[j]))
    return torch.stack(G, dim=1)


def _triad_inputs_present(j: int, has: np.ndarray) -> bool:
    names = ("left_hip", "right_hip", "spine1") if j == _J["pelvis"] else ("neck", "left_shoulder", "right_shoulder")
    return bool(all(has[_J[n]] for n in names)) and bool(has[j])


def _multi_child_frame(j: int, targets: torch.Tensor, rest: torch.Tensor,
                       origin: torch.Tensor | None = None) -> torch.Tensor:
    """Frame (T, 3, 3) of the pelvis (hip line, then hip centre -> spine1) or of spine3
    (``origin`` -> neck, then the shoulder line); ``origin`` (T, 3) is spine3's FK position."""
    if j == _J["pelvis"]:
        lh, rh, sp = _J["left_hip"], _J["right_hip"], _J["spine1"]

        def dirs(x, o):
            return x[..., lh, :] - x[..., rh, :], x[..., sp, :] - _hip_midpoint(x)
    else:
        ls, rs, nk = _J["left_shoulder"], _J["right_shoulder"], _J["neck"]

        def dirs(x, o):
            return x[..., nk, :] - o, x[..., ls, :] - x[..., rs, :]

    p_src, s_src = dirs(targets, origin if origin is not None else targets[:, j])
    p_rest, s_rest = dirs(rest, rest[j])
    return _triad(p_src, s_src, p_rest, s_rest)


def retarget(
    targets: np.ndarray,
    template: np.ndarray,
    joint_dirs: np.ndarray,
    frame_rotations: np.ndarray | None = None,
    frame_mask: np.ndarray | None = None,
    betas: np.ndarray | None = None,
) -> Retargeted:
    """Retarget one clip.

    Args:
        targets: (T, 24, 3) where the source puts each SMPL joint, metres, world y-up;
            NaN for joints the rig does not map (``BoundRig.targets``).
        template, joint_dirs: the body model's joint shape basis, (24, 3) and (24, 3, K).
        frame_rotations: (T, 24, 3, 3) global rotation of the source joint that carries
            each SMPL joint's twist (``BoundRig.frame_rotations``), or None for sources
            without rotations (keypoint arrays).
        frame_mask: (24,) bool, which entries of ``frame_rotations`` are real.
        betas: (K,) to reuse a subject's fitted shape; fitted here when None.
    """
    targets_np = np.asarray(targets, dtype=np.float64)
    if betas is None:
        betas = fit_betas(targets_np, template, joint_dirs)
    betas_t = torch.as_tensor(betas, dtype=_DTYPE)
    rest = torch.as_tensor(template, dtype=_DTYPE) + torch.as_tensor(joint_dirs, dtype=_DTYPE) @ betas_t
    has_target = np.isfinite(targets_np).all(axis=(0, 2))
    target_t = torch.as_tensor(targets_np, dtype=_DTYPE)
    frames = None
    if frame_rotations is not None:
        mask = np.ones(NUM_JOINTS, bool) if frame_mask is None else np.asarray(frame_mask, bool)
        frames = (torch.as_tensor(frame_rotations, dtype=_DTYPE), mask)
    G = _global_frames(torch.nan_to_num(target_t), rest, has_target, frames)
    local = global_to_local(G)
    _, joints = forward_kinematics(local, rest)
    transl = _hip_midpoint(target_t) - _hip_midpoint(joints)
    return Retargeted(
        global_orient=local[:, 0],
        body_pose=local[:, 1:],
        transl=transl,
        betas=betas_t,
        joints=joints + transl[:, None],
        targets=target_t,
    )


def retarget_errors(result: Retargeted) -> dict[str, float]:
    """How well a retargeted clip reproduces its source.

    Returns ``limb_angle_deg_median`` (angle between each limb and the same limb of the
    source, median over limbs and frames), ``shared_joint_error_mm`` (mean distance over
    frames and the shared joints, both skeletons root-aligned on the hip midpoint) and
    ``shared_joint_error_max_mm`` (the worst frame's mean).
    """
    j, t = result.joints, result.targets
    angles = []
    for _, a, b in LIMBS:
        u = j[:, _J[b]] - j[:, _J[a]]
        v = t[:, _J[b]] - t[:, _J[a]]
        cos = (u * v).sum(-1) / (u.norm(dim=-1) * v.norm(dim=-1)).clamp_min(1e-12)
        angles.append(torch.rad2deg(torch.acos(cos.clamp(-1, 1))))
    angle = torch.cat(angles)
    shared = [_J[n] for n in SHARED_JOINTS]
    err = (_hip_centred(j)[:, shared] - _hip_centred(t)[:, shared]).norm(dim=-1)  # (T, S)
    err = err[:, torch.isfinite(err).all(0)]
    per_frame = err.mean(-1) * 1000
    return {
        "limb_angle_deg_median": float(angle[torch.isfinite(angle)].median()),
        "shared_joint_error_mm": float(per_frame.mean()),
        "shared_joint_error_max_mm": float(per_frame.max()),
    }
