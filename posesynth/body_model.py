"""The body model: betas -> rest joints, and (pose, betas) -> mesh.  The one module that uses smplx.

posesynth ships its own body model, ``posesynth/assets/body_model/posesynth_neutral.npz``
(``DEFAULT_BODY_MODEL``).  It is in SMPL's file format and joint tree, but it is *not*
SMPL: a procedural mesh (``posesynth/assets/build_body_model.py``) released under the project's
licence, Apache-2.0.  A user who owns a real SMPL model can pass its file instead
(``--body-model PATH``, a ``.pkl`` or ``.npz``); a ``.pkl`` is unpickled only because
the user named it, and unpickling can run code, so pass only files you trust.

The default model has no pose correctives (``posedirs`` is all zeros) and a semantic,
10-dimensional shape space; rest joints are linear in ``betas``:

====  =================  ===============================================================
beta  name               +1 means
====  =================  ===============================================================
0     stature            uniform scale about the point between the soles, +7 cm height
1     girth              cross-sections 10 % wider, joints unchanged
2     thigh length       hip -> knee +2.5 cm (knee and everything below follow)
3     shank length       knee -> ankle +2.5 cm
4     upper-arm length   shoulder -> elbow +2 cm
5     forearm length     elbow -> wrist +1.5 cm
6     shoulder width     collar -> shoulder +2 cm per side (about +3.7 cm between shoulders)
7     hip width          each hip 1.5 cm further out (+3 cm between hips)
8     torso length       pelvis -> neck +3 cm, spine, collars, arms, head rise in proportion
9     neck length        spine3 -> neck +0.75 cm, neck -> head +0.75 cm
====  =================  ===============================================================

Shapes: ``B`` batch, ``V`` vertices, ``K`` betas, 24 SMPL joints.  Poses are SMPL's:
axis-angle ``global_orient`` (B, 3) and ``body_pose`` (B, 69), or rotation matrices.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import smplx
import torch
from smplx.utils import Struct
from smplx.vertex_ids import vertex_ids as SMPLX_VERTEX_IDS

from posesynth.errors import PosesynthError
from posesynth.npz_files import NpzUnreadable, read_npz_arrays
from posesynth.outputs import atomic_output
from posesynth.resources import packaged_path
from posesynth.skeleton import NUM_JOINTS, SMPL_PARENTS

DEFAULT_BODY_MODEL = packaged_path("assets", "body_model", "posesynth_neutral.npz")

_NUM_POSE_BASIS = 9 * (NUM_JOINTS - 1)  # 207
_SMPL_NUM_VERTICES = 6890
_ROOT_PARENTS = (-1, 2**32 - 1)
# smplx's VertexJointSelector needs these vertex ids; their joints are sliced off here.
_LANDMARK_NAMES = tuple(SMPLX_VERTEX_IDS["smplh"])


class BodyModelError(PosesynthError, ValueError):
    """A body model file that cannot be used; the message names the file."""


@dataclass(frozen=True)
class BodyOutput:
    """A posed body."""

    vertices: torch.Tensor  # (B, V, 3)
    joints: torch.Tensor  # (B, 24, 3) SMPL's joints


# ---------------------------------------------------------------------------- reading files
def _read_npz(path: Path) -> dict[str, Any]:
    try:
        return read_npz_arrays(path, "body model")
    except NpzUnreadable as exc:
        raise BodyModelError(f"{path}: {exc}") from None


def _plain(value: Any) -> Any:
    """chumpy arrays (SMPL's .pkl files) -> numpy; scipy sparse matrices -> dense."""
    if hasattr(value, "toarray"):
        return value.toarray()
    if type(value).__module__.startswith("chumpy"):
        return np.asarray(value.r)
    return value


def _read_pkl(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = pickle.load(f, encoding="latin1")
    except ModuleNotFoundError as exc:
        if exc.name == "chumpy":
            raise BodyModelError(
                f"{path}: this SMPL .pkl was saved with chumpy arrays and chumpy is not installed; "
                "install chumpy or convert the file to .npz (np.savez with the same keys)"
            ) from exc
        raise BodyModelError(f"{path}: cannot unpickle ({exc})") from exc
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError) as exc:
        raise BodyModelError(f"{path}: not a readable .pkl body model ({exc})") from exc
    if not isinstance(data, dict):
        raise BodyModelError(f"{path}: expected a dict of arrays, found {type(data).__name__}")
    return {k: _plain(v) for k, v in data.items()}


_KEYS = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table")


def _expected_shapes(num_vertices: int) -> dict[str, tuple[int | None, ...]]:
    """SMPL's array shapes; ``None`` is any size."""
    V = num_vertices
    return {
        "v_template": (V, 3),
        "f": (None, 3),
        "shapedirs": (V, 3, None),
        "posedirs": (V, 3, _NUM_POSE_BASIS),
        "J_regressor": (NUM_JOINTS, V),
        "weights": (V, NUM_JOINTS),
        "kintree_table": (2, NUM_JOINTS),
    }


def _check_arrays(path: Path, raw: dict[str, Any]) -> dict[str, np.ndarray]:
    """SMPL's seven arrays from ``raw``, checked for presence, type and shape."""
    missing = [k for k in _KEYS if k not in raw]
    if missing:
        raise BodyModelError(f"{path}: missing keys {missing}")
    a = {k: np.asarray(raw[k]) for k in _KEYS}
    V = a["v_template"].shape[0] if a["v_template"].ndim == 2 else -1
    for key, shape in _expected_shapes(V).items():
        arr = a[key]
        if arr.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, arr.shape)):
            want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
            raise BodyModelError(f"{path}: {key} has shape {arr.shape}, expected {want}")
        if not np.issubdtype(arr.dtype, np.number) or arr.size == 0:
            raise BodyModelError(f"{path}: {key} is empty or not numeric ({arr.dtype})")
        if not np.isfinite(arr).all():
            raise BodyModelError(f"{path}: {key} holds NaN or infinite values")
    if a["f"].min() < 0 or a["f"].max() >= V:
        raise BodyModelError(f"{path}: faces index vertices outside 0..{V - 1}")
    return a


def _parents(path: Path, kintree: np.ndarray) -> tuple[int, ...]:
    row = [int(p) for p in kintree[0]]
    parents = tuple(-1 if (i == 0 and p in _ROOT_PARENTS) else p for i, p in enumerate(row))
    if parents != SMPL_PARENTS:
        raise BodyModelError(f"{path}: kintree_table parents {parents} are not SMPL's {SMPL_PARENTS}")
    return parents


def _landmarks(raw: dict[str, Any], num_vertices: int) -> dict[str, int]:
    """Named surface vertices (nose, eyes, ears, toes, heels, fingertips), smplx's names."""
    if "landmark_names" in raw and "landmark_vertex_ids" in raw:
        names = [str(n) for n in np.asarray(raw["landmark_names"])]
        ids = np.asarray(raw["landmark_vertex_ids"]).astype(int).tolist()
        out = {n: i for n, i in zip(names, ids) if 0 <= i < num_vertices}
        if all(n in out for n in _LANDMARK_NAMES):
            return out
    if num_vertices == _SMPL_NUM_VERTICES:
        return dict(SMPLX_VERTEX_IDS["smplh"])
    return {}


# ---------------------------------------------------------------------------- the model
class BodyModel(torch.nn.Module):
    """An SMPL-format body model (smplx inside) with a linear joint shape basis.

    Build it with ``load_body_model``.
    """

    def __init__(self, smpl: smplx.SMPL, path: Path, identity: str, landmarks: dict[str, int]) -> None:
        super().__init__()
        self.smpl = smpl
        self._path = path
        self._identity = identity
        self.landmarks = landmarks
        regressor = smpl.J_regressor.double()  # (24, V)
        self.register_buffer("J_template", (regressor @ smpl.v_template.double()).to(smpl.dtype))
        jdirs = torch.einsum("jv,vck->jck", regressor, smpl.shapedirs.double())
        self.register_buffer("Jdirs", jdirs.to(smpl.dtype))  # (24, 3, K)
        self._parents = tuple(int(p) for p in smpl.parents.tolist())

    # -- metadata
    @property
    def path(self) -> Path:
        return self._path

    @property
    def identity(self) -> str:
        """``file name:first 16 hex digits of its sha256``, to tag checkpoints and stores."""
        return self._identity

    @property
    def faces(self) -> np.ndarray:
        """(F, 3) int64 triangle vertex indices."""
        return self.smpl.faces_tensor.cpu().numpy().astype(np.int64)

    @property
    def num_vertices(self) -> int:
        return int(self.smpl.v_template.shape[0])

    @property
    def num_betas(self) -> int:
        return int(self.smpl.num_betas)

    @property
    def parents(self) -> tuple[int, ...]:
        return self._parents

    @property
    def dtype(self) -> torch.dtype:
        return self.J_template.dtype

    @property
    def device(self) -> torch.device:
        return self.J_template.device

    # -- shape
    def _betas(self, betas: torch.Tensor | None, batch: int, dtype: torch.dtype | None = None) -> torch.Tensor:
        """(B, K<=num_betas) -> (B, num_betas), zero-padded, on the model's device, in ``dtype``
        (default: the model's)."""
        dtype = dtype or self.dtype
        if betas is None:
            return torch.zeros(batch, self.num_betas, dtype=dtype, device=self.device)
        betas = torch.as_tensor(betas, dtype=dtype, device=self.device)
        if betas.dim() != 2 or betas.shape[1] > self.num_betas:
            raise ValueError(f"betas must be (B, K<={self.num_betas}), got {tuple(betas.shape)}")
        return torch.nn.functional.pad(betas, (0, self.num_betas - betas.shape[1]))

    def joint_shape_basis(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``J_template`` (24, 3) and ``Jdirs`` (24, 3, K): rest joints = J_template + Jdirs @ betas."""
        return self.J_template, self.Jdirs

    def rest_joints(self, betas: torch.Tensor) -> torch.Tensor:
        """Rest (T-pose) joints (B, 24, 3) for ``betas`` (B, K), without skinning; differentiable.

        Computed in float64 when ``betas`` are float64, else in the model's dtype.
        """
        dtype = torch.float64 if torch.as_tensor(betas).dtype == torch.float64 else self.dtype
        b = self._betas(betas, 0, dtype)
        return self.J_template.to(dtype) + torch.einsum("jck,bk->bjc", self.Jdirs.to(dtype), b)

    # -- a few vertices, without the mesh
    def skin_vertices(
        self,
        vertex_ids: torch.Tensor | list[int] | tuple[int, ...],
        global_rotmats: torch.Tensor,
        joints: torch.Tensor,
        betas: torch.Tensor,
    ) -> torch.Tensor:
        """Linear-blend skinning of only the given vertices of a posed body.

        Args:
            vertex_ids: (n,) vertex indices.
            global_rotmats: (B, 24, 3, 3) global joint rotations (forward kinematics' output).
            joints: (B, 24, 3) posed joints, translation included (world).
            betas: (B, K) shape.

        Returns:
            (B, n, 3) world vertices, equal to ``forward``'s vertices at those indices:
            ``v = sum_j w_vj (G_j (v_shaped - J_rest_j) + joints_j)`` with
            ``v_shaped = v_template + shapedirs @ betas`` (plus the pose-corrective offsets when
            the model has any).  Computed in ``joints``' dtype, costing O(B n 24).
        """
        if global_rotmats.dim() != 4 or global_rotmats.shape[1:] != (NUM_JOINTS, 3, 3):
            raise ValueError(f"global_rotmats must be (B, 24, 3, 3), got {tuple(global_rotmats.shape)}")
        if joints.shape != (global_rotmats.shape[0], NUM_JOINTS, 3):
            raise ValueError(f"joints must be ({global_rotmats.shape[0]}, 24, 3), got {tuple(joints.shape)}")
        dtype, device = joints.dtype, joints.device
        ids = torch.as_tensor(vertex_ids, dtype=torch.long, device=self.device).reshape(-1)
        b = self._betas(betas, joints.shape[0], dtype).to(device)
        v = self.smpl.v_template[ids].to(device, dtype)  # (n, 3)
        v_shaped = v + torch.einsum("nck,bk->bnc", self.smpl.shapedirs[ids].to(device, dtype), b)
        cols = (3 * ids[:, None] + torch.arange(3, device=ids.device)).reshape(-1)
        posedirs = self.smpl.posedirs[:, cols]  # (207, 3n)
        if bool(posedirs.any()):
            from posesynth.kinematics import global_to_local

            local = global_to_local(global_rotmats.to(dtype))[:, 1:]
            feature = (local - torch.eye(3, dtype=dtype, device=device)).reshape(joints.shape[0], -1)
            v_shaped = v_shaped + (feature @ posedirs.to(device, dtype)).reshape(v_shaped.shape)
        w = self.smpl.lbs_weights[ids].to(device, dtype)  # (n, 24)
        G = global_rotmats.to(dtype)
        offset = joints - (G @ self.rest_joints(b).to(device, dtype).unsqueeze(-1)).squeeze(-1)  # (B, 24, 3)
        A = torch.einsum("nj,bjcd->bncd", w, G)  # blended rotations (B, n, 3, 3)
        return (A @ v_shaped.unsqueeze(-1)).squeeze(-1) + torch.einsum("nj,bjc->bnc", w, offset)

    # -- posing
    def forward(
        self,
        global_orient: torch.Tensor,
        body_pose: torch.Tensor,
        betas: torch.Tensor | None = None,
        transl: torch.Tensor | None = None,
    ) -> BodyOutput:
        """Pose the mesh from axis-angle ``global_orient`` (B, 3) and ``body_pose`` (B, 69).

        ``betas`` (B, K) default to zeros, ``transl`` (B, 3) to none.
        """
        go = torch.as_tensor(global_orient, dtype=self.dtype, device=self.device).reshape(-1, 3)
        bp = torch.as_tensor(body_pose, dtype=self.dtype, device=self.device).reshape(go.shape[0], -1)
        return self._run(go, bp, betas, transl, pose2rot=True)

    def forward_rotmats(
        self,
        global_rotmat: torch.Tensor,
        body_rotmats: torch.Tensor,
        betas: torch.Tensor | None = None,
        transl: torch.Tensor | None = None,
    ) -> BodyOutput:
        """Pose the mesh from rotation matrices ``global_rotmat`` (B, 3, 3), ``body_rotmats`` (B, 23, 3, 3)."""
        go = torch.as_tensor(global_rotmat, dtype=self.dtype, device=self.device).reshape(-1, 1, 3, 3)
        bp = torch.as_tensor(body_rotmats, dtype=self.dtype, device=self.device).reshape(go.shape[0], -1, 3, 3)
        return self._run(go, bp, betas, transl, pose2rot=False)

    def _run(
        self,
        go: torch.Tensor,
        bp: torch.Tensor,
        betas: torch.Tensor | None,
        transl: torch.Tensor | None,
        pose2rot: bool,
    ) -> BodyOutput:
        b = self._betas(betas, go.shape[0])
        if b.shape[0] != go.shape[0]:
            raise ValueError(f"betas batch {b.shape[0]} != pose batch {go.shape[0]}")
        if transl is not None:
            transl = torch.as_tensor(transl, dtype=self.dtype, device=self.device).reshape(-1, 3)
        out = self.smpl(global_orient=go, body_pose=bp, betas=b, transl=transl, pose2rot=pose2rot)
        return BodyOutput(vertices=out.vertices, joints=out.joints[:, :NUM_JOINTS])


# ---------------------------------------------------------------------------- loading
def _identity(path: Path) -> str:
    return f"{path.name}:{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}"


def _make_smpl(path: Path, arrays: dict[str, np.ndarray], num_betas: int, landmarks: dict[str, int],
               dtype: torch.dtype) -> smplx.SMPL:
    kwargs: dict[str, Any] = {}
    if all(n in landmarks for n in _LANDMARK_NAMES):
        kwargs["vertex_ids"] = {n: landmarks[n] for n in _LANDMARK_NAMES}
    else:  # smplx insists on extra vertex joints; point them at vertex 0 (they are sliced off)
        kwargs["vertex_ids"] = dict.fromkeys(_LANDMARK_NAMES, 0)
    k = min(num_betas, arrays["shapedirs"].shape[2])
    # smplx prints (to stdout) a warning for every shape space under 300 dimensions.
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            return smplx.SMPL(
                model_path=str(path), data_struct=Struct(**arrays), num_betas=k, dtype=dtype,
                create_betas=False, create_global_orient=False, create_body_pose=False, create_transl=False,
                **kwargs,
            )
        except (ValueError, RuntimeError, TypeError, IndexError) as exc:
            raise BodyModelError(f"{path}: smplx cannot build a model from it ({exc})") from exc


def load_body_model(
    path: str | Path | None = None,
    num_betas: int = 10,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> BodyModel:
    """Load an SMPL-format body model; ``None`` loads posesynth's own (``DEFAULT_BODY_MODEL``).

    ``.npz`` files are read without pickle.  ``.pkl`` files (SMPL's own downloads) are
    unpickled: only pass files you trust.  Raises ``BodyModelError`` naming the file if it
    is missing, unreadable, lacks SMPL's keys, has wrong shapes or another joint tree.
    """
    path = Path(DEFAULT_BODY_MODEL if path is None else path).expanduser()
    raw, arrays = _read_model(path)
    if num_betas < 1:
        raise ValueError(f"num_betas must be >= 1, got {num_betas}")
    landmarks = _landmarks(raw, arrays["v_template"].shape[0])
    smpl = _make_smpl(path, arrays, num_betas, landmarks, dtype)
    model = BodyModel(smpl, path, _identity(path), landmarks)
    return model.to(device) if device is not None else model


def _read_model(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Everything in the model file at ``path`` and its seven SMPL arrays, checked."""
    if not path.is_file():
        raise BodyModelError(f"{path}: no such body model file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        raw = _read_npz(path)
    elif suffix == ".pkl":
        raw = _read_pkl(path)
    else:
        raise BodyModelError(f"{path}: unknown body model format {suffix!r} (expected .npz or .pkl)")
    arrays = _check_arrays(path, raw)
    _parents(path, arrays["kintree_table"])
    return raw, arrays


# ---------------------------------------------------------------------------- what betas mean
SHIPPED_BETAS = ("stature", "girth", "thigh length", "shank length", "upper-arm length", "forearm length",
                 "shoulder width", "hip width", "torso length", "neck length")


def _digest(identity: str) -> str:
    return identity.rsplit(":", 1)[-1]


def shape_space(body: BodyModel) -> dict[str, Any]:
    """What ``body``'s betas mean, as every store records it (attribute ``shape_space``):
    ``body_model`` (its identity), ``num_betas``, ``smpl`` (whether it has SMPL's 6890-vertex
    mesh, as SMPL's own files do), ``kind`` ("posesynth": the shipped model, whatever its file
    name; "smpl"; "other") and ``betas``, in words."""
    shipped = _digest(body.identity) == _digest(_identity(DEFAULT_BODY_MODEL))
    smpl = body.num_vertices == _SMPL_NUM_VERTICES
    if shipped:
        meaning = ("posesynth's own semantic shape space, not SMPL's (the same betas on an SMPL model give "
                   "another body): " + ", ".join(f"{i} {name}" for i, name in enumerate(SHIPPED_BETAS)))
    elif smpl:
        meaning = ("the shape space of the SMPL-format model passed with --body-model, which has SMPL's "
                   "6890-vertex mesh: SMPL's betas when the file is an SMPL release")
    else:
        meaning = (f"the shape space of the SMPL-format model passed with --body-model ({body.num_vertices} "
                   "vertices: not SMPL's mesh, so not SMPL's betas)")
    return {"body_model": body.identity, "num_betas": body.num_betas, "smpl": smpl,
            "kind": "posesynth" if shipped else "smpl" if smpl else "other", "betas": meaning}


# ---------------------------------------------------------------------------- for smplx.create
SMPLX_FILE = Path("smpl") / "SMPL_NEUTRAL.pkl"


def write_smplx_model(folder: str | Path, path: str | Path | None = None, overwrite: bool = False) -> Path:
    """Write the body model at ``path`` (None: posesynth's own) as ``<folder>/smpl/SMPL_NEUTRAL.pkl``,
    SMPL's seven arrays pickled as plain numpy arrays, which is what ``smplx.create(folder,
    model_type="smpl")`` reads (smplx's SMPL class only unpickles; it cannot read the shipped
    ``.npz``).  Returns the file written (refused if it exists, unless ``overwrite``)."""
    source = Path(DEFAULT_BODY_MODEL if path is None else path).expanduser()
    _, arrays = _read_model(source)
    out = Path(folder) / SMPLX_FILE
    with atomic_output(out, overwrite) as tmp, open(tmp, "wb") as fh:
        pickle.dump(arrays, fh, protocol=4)
    return out
