"""Per-keypoint visibility: inside the image, and not hidden behind the body itself.

Self-occlusion is tested against a **capsule approximation of the posed body** (``BodyCapsules``),
built once from the body model:

- one capsule per bone of SMPL's 24-joint tree (23, from each joint to each of its children),
  whose radius is the median distance from the bone segment of the rest-pose vertices skinned
  mostly to the bone's parent joint (a vertex of a joint with several children, the pelvis or
  spine3, counts for the nearest of its bones);
- a sphere for the head (centre: the centroid of the head's vertices, carried by the head's
  rotation; radius: their median distance from it), and a capsule for each hand's fingers and
  each foot's toes (from the hand / foot joint through 1.5 times its vertices' centroid offset);
- every radius is linear in betas: ``r = r0 + dr @ betas``, ``dr`` the finite difference of
  the same medians on the mesh shaped by each unit beta (girth widens every capsule, stature
  scales them).  Capsule offsets (head centre, fingers, toes) do not change with betas.

On posesynth's default body the radii are about 0.10-0.14 m on the torso, 0.068 m thighs,
0.043 m shanks, 0.045 m upper arms, 0.038 m forearms and 0.10 m for the head.

A keypoint ``p`` seen from camera centre ``o`` is **occluded** when the segment from ``o`` to
``p``, stopped ``tol`` (0.02 m) short of ``p``, passes at least ``margin`` (0.01 m) deep inside a
capsule that is not the keypoint's own part of the body (the margin keeps rays that graze the
silhouette from counting).  Which capsules are its own, with a ``KeypointSet``:

- a keypoint made of SMPL joints (all of smpl24, the joints of h36m17 and coco17) is never
  occluded by the capsules touching those joints (its bones; the head sphere for the neck, the
  finger and toe capsules for the wrist and ankle), and not by the capsules touching a joint at
  most two bones away when it lies inside them or within ``tol`` of their surface (capsules
  overlap at joints: the hips sit inside
  the lower-torso capsule, the shoulders inside the upper-chest ones).  A wrist pressed into the
  belly is inside the torso's capsule but the torso is not its own part: it is hidden from behind.
- a surface keypoint (a mesh vertex: nose, eyes, ears, head top) has no own capsule: it is
  hidden when the ray crosses the body, the head included, more than ``surface_tol`` (0.04 m)
  before reaching it: the nose and eyes from behind, the far eye and ear in profile.  The head is
  wider than a sphere of its median radius at the ears, so both ears count as hidden within
  about 10 degrees of an exactly frontal view.

Without a set, every capsule that contains the keypoint is skipped and no other.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from posesynth.body_model import BodyModel
from posesynth.keypoint_sets import VERTEX, KeypointSet
from posesynth.rotations import rotation_between
from posesynth.skeleton import JOINT_INDEX, NUM_JOINTS, SMPL_PARENTS, children

_HEAD = JOINT_INDEX["head"]
_LEAVES = (  # (joint, its parent) whose own vertices get a capsule beyond the joint
    (JOINT_INDEX["left_hand"], JOINT_INDEX["left_wrist"]), (JOINT_INDEX["right_hand"], JOINT_INDEX["right_wrist"]),
    (JOINT_INDEX["left_foot"], JOINT_INDEX["left_ankle"]), (JOINT_INDEX["right_foot"], JOINT_INDEX["right_ankle"]),
)
_LEAF_REACH = 1.5  # a finger/toe capsule ends at joint + 1.5 x (centroid - joint)
_MIN_RADIUS = 0.005
_CHUNK = {"cpu": 1 << 18}  # (sample, view, keypoint, capsule) tests per vectorised step (cache-sized)
_CHUNK_OTHER = 1 << 25  # on accelerators


@dataclass(frozen=True)
class Capsules:
    """Posed capsules: axis from ``a`` to ``b`` (equal for a sphere) and a radius."""

    a: torch.Tensor  # (B, C, 3)
    b: torch.Tensor  # (B, C, 3)
    radius: torch.Tensor  # (B, C)
    attached: tuple[tuple[int, ...], ...] = ()  # per capsule, the SMPL joints it belongs to

    def __post_init__(self) -> None:
        if self.a.dim() != 3 or self.a.shape[-1] != 3 or self.b.shape != self.a.shape:
            raise ValueError(f"capsule ends a, b must both be (B, C, 3), got {tuple(self.a.shape)}, "
                             f"{tuple(self.b.shape)}")
        if self.radius.shape != self.a.shape[:2]:
            raise ValueError(f"capsule radius must be {tuple(self.a.shape[:2])}, got {tuple(self.radius.shape)}")

    @property
    def num_capsules(self) -> int:
        return self.a.shape[1]

    def skippable(self, keypoint_set: KeypointSet) -> tuple[torch.Tensor, torch.Tensor]:
        """Capsules that are each keypoint's own part of the body, two (J, C) bool masks:
        ``always`` (never occlude it) and ``if_inside`` (do not occlude it when it is inside them)."""
        always, if_inside = _skippable(self.attached, keypoint_set)
        return always.clone(), if_inside.clone()


@functools.lru_cache(maxsize=64)
def _skippable(attached: tuple[tuple[int, ...], ...], keypoint_set: KeypointSet) -> tuple[torch.Tensor, torch.Tensor]:
    """For a keypoint made of SMPL joints: the capsules touching those joints never occlude it, and
    those touching a joint at most two bones away do not when it is inside them.  A surface keypoint
    (any vertex source) may be occluded by every capsule."""
    always = torch.zeros(len(keypoint_set), len(attached), dtype=torch.bool)
    if_inside = torch.zeros_like(always)
    for k, sources in enumerate(keypoint_set.sources):
        if any(s.startswith(VERTEX) for s, _ in sources):
            continue
        own = {JOINT_INDEX[s] for s, _ in sources}
        near = set().union(*(_NEIGHBOURHOOD[j] for j in own))
        for c, joints in enumerate(attached):
            always[k, c] = bool(own & set(joints))
            if_inside[k, c] = bool(near & set(joints))
    return always, if_inside


def _neighbourhood(hops: int = 2) -> tuple[frozenset[int], ...]:
    """For each joint, the joints at most ``hops`` bones away in SMPL's tree."""
    adj = [set(children()[j]) | ({SMPL_PARENTS[j]} if SMPL_PARENTS[j] >= 0 else set()) for j in range(NUM_JOINTS)]
    out = []
    for j in range(NUM_JOINTS):
        near = {j}
        for _ in range(hops):
            near |= set().union(*(adj[i] for i in near))
        out.append(frozenset(near))
    return tuple(out)


_NEIGHBOURHOOD = _neighbourhood()


@dataclass(frozen=True)
class BodyCapsules:
    """A body model's capsule layout (rest measurements); ``capsules_for`` poses it."""

    bones: tuple[tuple[int, int], ...]  # (parent, child) joint pairs, one capsule each
    leaf_joints: tuple[int, ...]  # joints carrying an extra capsule (hands, feet; the head last)
    leaf_start: torch.Tensor  # (L, 3) axis start, in the joint's rest frame, relative to the joint
    leaf_end: torch.Tensor  # (L, 3)
    leaf_parent: tuple[int, ...]  # the joint's parent (to orient it when rotations are not given)
    rest_bone_dirs: torch.Tensor  # (L, 3) rest direction parent -> leaf joint (mean shape)
    radius0: torch.Tensor  # (C,) radius at betas = 0, C = len(bones) + L
    radius_dirs: torch.Tensor  # (C, K) radius change per unit beta

    @property
    def num_capsules(self) -> int:
        return len(self.bones) + len(self.leaf_joints)

    @property
    def attached(self) -> tuple[tuple[int, ...], ...]:
        """Per capsule, the joints it joins: a bone's two ends; a leaf's joint and its parent."""
        return tuple(self.bones) + tuple(zip(self.leaf_parent, self.leaf_joints))

    @classmethod
    def from_body(cls, body: BodyModel) -> BodyCapsules:
        """Measure the capsules on ``body``'s rest mesh (float64, CPU; a fraction of a second)."""
        v0 = body.smpl.v_template.detach().double().cpu()
        dirs = body.smpl.shapedirs.detach().double().cpu()  # (V, 3, K)
        J0 = body.J_template.detach().double().cpu()
        Jdirs = body.Jdirs.detach().double().cpu()
        owner = body.smpl.lbs_weights.detach().cpu().argmax(1)
        bones = tuple((p, c) for p in range(NUM_JOINTS) for c in children()[p])
        leaves = tuple(j for j, _ in _LEAVES) + (_HEAD,)
        assign = _assign_vertices(v0, J0, owner, bones)
        start, end = _leaf_axes(v0, J0, owner, leaves)
        r0 = _radii(v0, J0, owner, bones, assign, leaves, start, end)
        dr = torch.stack([_radii(v0 + dirs[..., k], J0 + Jdirs[..., k], owner, bones, assign, leaves, start, end) - r0
                          for k in range(dirs.shape[-1])], dim=-1)
        parents = tuple(p for _, p in _LEAVES) + (JOINT_INDEX["neck"],)
        rest_dirs = torch.nn.functional.normalize(J0[list(leaves)] - J0[list(parents)], dim=-1)
        return cls(bones, leaves, start, end, parents, rest_dirs, r0, dr)

    def capsules_for(self, joints: torch.Tensor, global_rotmats: torch.Tensor | None = None,
                     betas: torch.Tensor | None = None) -> Capsules:
        """Pose the capsules.

        Args:
            joints: (B, 24, 3) posed world joints.
            global_rotmats: (B, 24, 3, 3) global joint rotations, to carry the head sphere and
                finger/toe capsules; without them each is turned by the smallest rotation that
                takes its parent bone's rest direction to the posed one (no twist).
            betas: (B, K) shape, for the radii; None: the mean shape's.

        Returns:
            ``Capsules`` with C = 23 bones + 5 (hands, feet, head), in ``joints``' dtype and device.
        """
        if joints.dim() != 3 or joints.shape[1:] != (NUM_JOINTS, 3):
            raise ValueError(f"joints must be (B, 24, 3), got {tuple(joints.shape)}")
        dtype, device, B = joints.dtype, joints.device, joints.shape[0]
        p_idx = [p for p, _ in self.bones]
        c_idx = [c for _, c in self.bones]
        leaves = list(self.leaf_joints)
        if global_rotmats is not None:
            if global_rotmats.shape != (B, NUM_JOINTS, 3, 3):
                raise ValueError(f"global_rotmats must be ({B}, 24, 3, 3), got {tuple(global_rotmats.shape)}")
            G = global_rotmats[:, leaves].to(dtype)
        else:
            bone = joints[:, leaves] - joints[:, list(self.leaf_parent)]
            G = rotation_between(self.rest_bone_dirs.to(device, dtype).expand_as(bone), bone)
        origin = joints[:, leaves]
        leaf_a = origin + (G @ self.leaf_start.to(device, dtype).unsqueeze(-1)).squeeze(-1)
        leaf_b = origin + (G @ self.leaf_end.to(device, dtype).unsqueeze(-1)).squeeze(-1)
        a = torch.cat([joints[:, p_idx], leaf_a], dim=1)
        b = torch.cat([joints[:, c_idx], leaf_b], dim=1)
        radius = self.radius0.to(device, dtype).expand(B, -1)
        if betas is not None:
            K = min(betas.shape[-1], self.radius_dirs.shape[-1])
            radius = radius + betas[:, :K].to(device, dtype) @ self.radius_dirs[:, :K].to(device, dtype).T
        return Capsules(a, b, radius.clamp_min(_MIN_RADIUS), self.attached)


# ---------------------------------------------------------------------------- measuring
def _point_segment_distance(p: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Distance (...,) from points p to segments [a, b]; all (..., 3), broadcast."""
    d = b - a
    t = (((p - a) * d).sum(-1) / (d * d).sum(-1).clamp_min(1e-12)).clamp(0, 1)
    return (p - a - t.unsqueeze(-1) * d).norm(dim=-1)


def _assign_vertices(v, J, owner, bones) -> torch.Tensor:
    """(V, bones) bool: the bones each vertex measures, the nearest of those leaving its owner joint
    (all of them on a tie, so a symmetric mesh gets symmetric radii)."""
    a = J[[p for p, _ in bones]]
    b = J[[c for _, c in bones]]
    dist = _point_segment_distance(v[:, None], a[None], b[None])  # (V, bones)
    mine = owner[:, None] == torch.tensor([p for p, _ in bones])[None]
    dist = torch.where(mine, dist, torch.full_like(dist, torch.inf))
    return mine & (dist <= dist.amin(1, keepdim=True) + 1e-9)


def _leaf_axes(v, J, owner, leaves) -> tuple[torch.Tensor, torch.Tensor]:
    """Rest axis (start, end) of each leaf capsule relative to its joint; the head's is a point."""
    starts, ends = [], []
    for j in leaves:
        centre = v[owner == j].mean(0) - J[j]
        if j == _HEAD:
            starts.append(centre)
            ends.append(centre)
        else:
            starts.append(torch.zeros(3, dtype=v.dtype))
            ends.append(_LEAF_REACH * centre)
    return torch.stack(starts), torch.stack(ends)


def _radii(v, J, owner, bones, assign, leaves, start, end) -> torch.Tensor:
    """Median vertex distance to each capsule axis (C,), on the mesh ``v`` with joints ``J``."""
    out = []
    for i, (p, c) in enumerate(bones):
        sel = assign[:, i]
        out.append(_point_segment_distance(v[sel], J[p], J[c]).median() if sel.any() else v.new_tensor(0.02))
    for k, j in enumerate(leaves):
        out.append(_point_segment_distance(v[owner == j], J[j] + start[k], J[j] + end[k]).median())
    return torch.stack(out)


# ---------------------------------------------------------------------------- tests
def in_frame(pixels: torch.Tensor, image_size: torch.Tensor, depth: torch.Tensor | None = None) -> torch.Tensor:
    """(B, V, J) bool: the pixel lies in the image, ``x`` in ``[-0.5, W - 0.5)`` and ``y`` in
    ``[-0.5, H - 0.5)`` (pixel (0, 0) is the centre of the top-left pixel).

    pixels (B, V, J, 2); image_size (B, V, 2) (W, H); depth (B, V, J), optional: when given,
    points at or behind the camera (depth <= 0) are out of frame too.
    """
    if pixels.dim() != 4 or pixels.shape[-1] != 2:
        raise ValueError(f"pixels must be (B, V, J, 2), got {tuple(pixels.shape)}")
    if image_size.shape != pixels.shape[:2] + (2,):
        raise ValueError(f"image_size must be {tuple(pixels.shape[:2]) + (2,)}, got {tuple(image_size.shape)}")
    size = image_size.to(pixels.dtype).unsqueeze(2)
    inside = ((pixels >= -0.5) & (pixels < size - 0.5)).all(-1)
    if depth is not None:
        if depth.shape != pixels.shape[:-1]:
            raise ValueError(f"depth must be {tuple(pixels.shape[:-1])}, got {tuple(depth.shape)}")
        inside = inside & (depth > 0)
    return inside


def self_occlusion(
    keypoints_world: torch.Tensor,
    camera_centres: torch.Tensor,
    capsules: Capsules,
    keypoint_set: KeypointSet | None = None,
    tol: float = 0.02,
    surface_tol: float = 0.04,
    margin: float = 0.01,
) -> torch.Tensor:
    """(B, V, J) bool: the keypoint is hidden from the camera by the body (see the module doc).

    Args:
        keypoints_world: (B, J, 3) metres.
        camera_centres: (B, V, 3) metres (``Cameras.centres``).
        capsules: the posed body (``BodyCapsules.capsules_for``), C capsules.
        keypoint_set: what the keypoints are, to know which capsules each may be inside and which
            keypoints lie on the surface; None: skip any capsule that contains the keypoint.
        tol: metres of body the ray may cross just before reaching an inner keypoint.
        surface_tol: the same for surface keypoints.
        margin: a ray is blocked only where it passes at least this deep inside a capsule, so
            rays grazing a capsule at the body's silhouette do not count.

    Vectorised over (B, V, J, C) in chunks of samples; no loop over samples.
    """
    if keypoints_world.dim() != 3 or keypoints_world.shape[-1] != 3:
        raise ValueError(f"keypoints_world must be (B, J, 3), got {tuple(keypoints_world.shape)}")
    B, J = keypoints_world.shape[:2]
    if camera_centres.dim() != 3 or camera_centres.shape[0] != B or camera_centres.shape[-1] != 3:
        raise ValueError(f"camera_centres must be ({B}, V, 3), got {tuple(camera_centres.shape)}")
    if capsules.a.shape[0] != B:
        raise ValueError(f"capsules are for {capsules.a.shape[0]} samples, keypoints for {B}")
    V, C = camera_centres.shape[1], capsules.num_capsules
    out = torch.zeros(B, V, J, dtype=torch.bool, device=keypoints_world.device)
    if C == 0 or B == 0:
        return out
    dtype, device = keypoints_world.dtype, keypoints_world.device
    if keypoint_set is not None:
        if len(keypoint_set) != J:
            raise ValueError(f"keypoint_set {keypoint_set.name} has {len(keypoint_set)} keypoints, got {J}")
        if len(capsules.attached) != C:
            raise ValueError("capsules: a keypoint_set needs capsules that say which joints each belongs to "
                             "(Capsules.attached, as BodyCapsules.capsules_for makes them)")
        always, if_inside = (m.to(device) for m in capsules.skippable(keypoint_set))
        tols = torch.tensor([surface_tol if s else tol for s in keypoint_set.surface], dtype=dtype, device=device)
    else:
        always = torch.zeros(J, C, dtype=torch.bool, device=device)
        if_inside = torch.ones(J, C, dtype=torch.bool, device=device)
        tols = torch.full((J,), tol, dtype=dtype, device=device)
    step = max(1, _CHUNK.get(device.type, _CHUNK_OTHER) // max(1, V * J * C))
    for i in range(0, B, step):
        sl = slice(i, i + step)
        out[sl] = _occluded(keypoints_world[sl], camera_centres[sl].to(dtype), capsules.a[sl].to(dtype),
                            capsules.b[sl].to(dtype), capsules.radius[sl].to(dtype), always, if_inside, tols, margin)
    return out


@dataclass(frozen=True)
class DistinctKeypoints:
    """The distinct keypoints of several keypoint sets: those with the same derivation (the SMPL
    joints that h36m17 and coco17 reuse) once, so each is tested for occlusion once
    (smpl24 + h36m17 + coco17: 31 distinct of 58)."""

    keypoints: KeypointSet  # one keypoint per distinct derivation
    picks: tuple[tuple[str, int], ...]  # per distinct keypoint: (set name, index) of its first use
    columns: Mapping[str, tuple[int, ...]]  # per set: the distinct keypoint each of its keypoints is

    @classmethod
    def of(cls, sets: Sequence[KeypointSet]) -> DistinctKeypoints:
        column: dict[tuple, int] = {}
        picks: list[tuple[str, int]] = []
        for s in sets:
            for k, src in enumerate(s.sources):
                if src not in column:
                    column[src] = len(picks)
                    picks.append((s.name, k))
        union = KeypointSet(name="+".join(s.name for s in sets), parents=None, edges=(), derivation="",
                            joint_names=tuple(f"{name}:{k}" for name, k in picks), sources=tuple(column))
        return cls(union, tuple(picks), {s.name: tuple(column[src] for src in s.sources) for s in sets})


def self_occlusion_sets(
    keypoints: Mapping[str, torch.Tensor],
    camera_centres: torch.Tensor,
    capsules: Capsules,
    distinct: DistinctKeypoints,
    **kwargs: float,
) -> dict[str, torch.Tensor]:
    """``self_occlusion`` for several keypoint sets at once, each distinct keypoint tested once.

    Args:
        keypoints: set name -> (B, J, 3) world keypoints, for every set of ``distinct``.
        camera_centres: (B, V, 3) metres.
        capsules: the posed body (``BodyCapsules.capsules_for``).
        distinct: ``DistinctKeypoints.of`` the sets.
        kwargs: go to ``self_occlusion``.

    Returns:
        set name -> (B, V, J) bool, as ``self_occlusion`` gives for the set alone.
    """
    points = torch.stack([keypoints[name][:, k] for name, k in distinct.picks], dim=1)
    hidden = self_occlusion(points, camera_centres, capsules, distinct.keypoints, **kwargs)
    return {name: hidden[:, :, list(cols)] for name, cols in distinct.columns.items()}


def _occluded(p, o, a, b, r, always, if_inside, tols, margin) -> torch.Tensor:
    """One chunk of ``self_occlusion``: p (B, J, 3), o (B, V, 3), a, b (B, C, 3), r (B, C),
    always, if_inside (J, C) (``Capsules.skippable``), tols (J,), margin (m) -> (B, V, J).

    Two stages: every (sample, view, keypoint, capsule) is tested against the capsule's bounding
    sphere (a few operations, the dot products as one matrix product); the ~10 % that may hit
    are gathered and tested exactly (``_ray_hits_capsule``).  Coordinates are taken relative to
    the sample's mean keypoint, so float32 keeps its precision wherever the body stands.
    """
    B, J = p.shape[:2]
    V, C = o.shape[1], a.shape[1]
    centre = p.mean(1, keepdim=True)
    pc, ac, d = p - centre, a - centre, b - a
    ray = o.unsqueeze(2) - p.unsqueeze(1)  # (B, V, J, 3) keypoint -> camera
    u = ray / ray.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    occluder = (r - margin).clamp_min(0)
    mid = ac + 0.5 * d  # bounding spheres (B, C, 3), radii (B, C)
    bound = 0.5 * d.norm(dim=-1) + occluder
    along = (u.flatten(1, 2) @ mid.transpose(1, 2)).view(B, V, J, C) - (pc.unsqueeze(1) * u).sum(-1, keepdim=True)
    dist2 = ((mid * mid).sum(-1)[:, None] + (pc * pc).sum(-1)[..., None] - 2 * pc @ mid.transpose(1, 2)).unsqueeze(1)
    maybe = (dist2 - along * along < (bound * bound)[:, None, None]) & (along > tols[:, None] - bound[:, None, None])
    flat = (maybe & ~always).flatten().nonzero().squeeze(1)
    out = torch.zeros(B * V * J, dtype=torch.bool, device=p.device)
    if flat.numel() == 0:
        return out.view(B, V, J)
    c, bvj = flat % C, flat // C
    j, bi = bvj % J, bvj // (V * J)
    pj, cap = bi * J + j, bi * C + c
    hit, inside = _ray_hits_capsule(pc.reshape(-1, 3)[pj], u.reshape(-1, 3)[bvj], ac.reshape(-1, 3)[cap],
                                    d.reshape(-1, 3)[cap], occluder.reshape(-1)[cap], r.reshape(-1)[cap], tols[j])
    blocked = hit & ~(inside & if_inside[j, c])
    out[bvj[blocked]] = True
    return out.view(B, V, J)


def _ray_hits_capsule(p, u, a, d, r_occ, r, tol) -> tuple[torch.Tensor, torch.Tensor]:
    """For K rays and capsules: does the ray from ``p`` (K, 3) along unit ``u`` (K, 3), beyond
    ``tol`` (K,), pass inside the capsule ``a + t d`` (K, 3) of radius ``r_occ`` (K,)?  And is ``p``
    within ``r + tol`` of the axis?  Both (K,) bool.

    The ray's closest approach to the axis (line to segment, ``t`` clamped to [0, 1]) is at
    ``s`` along the ray, at distance ``dist``; the ray crosses the capsule over
    ``s +- k sqrt(r_occ^2 - dist^2)`` (``k = 1 / sin(angle between ray and axis)`` along the
    cylinder, 1 at the rounded ends), and is blocked when that reaches past ``tol`` toward the camera.
    """
    w = a - p
    wu, du = (w * u).sum(-1), (d * u).sum(-1)
    ww, wd, dd = (w * w).sum(-1), (w * d).sum(-1), (d * d).sum(-1)
    beta, gamma = wd - wu * du, dd - du * du
    ok = gamma > 1e-12
    gamma_ = torch.where(ok, gamma, torch.ones_like(gamma))
    t = torch.where(ok, -beta / gamma_, torch.zeros_like(beta)).clamp(0, 1)
    dist2 = ww - wu * wu + t * (2 * beta + gamma * t)
    h2 = r_occ * r_occ - dist2
    k2 = torch.where(ok & (t > 0) & (t < 1), dd / gamma_, torch.ones_like(dd))
    ahead = tol - (wu + t * du)  # how far the closest approach is short of tol
    hit = (h2 > 0) & ((ahead < 0) | (ahead * ahead < h2 * k2))
    tc = torch.where(dd > 0, -wd / dd.clamp_min(1e-30), torch.zeros_like(wd)).clamp(0, 1)
    reach = r + tol
    inside = ww + tc * (2 * wd + tc * dd) < reach * reach
    return hit, inside
