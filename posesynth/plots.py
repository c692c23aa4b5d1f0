"""PNG figures for ``evaluate`` and ``info`` (matplotlib, Agg: no display needed).

- ``plot_joint_angle_distributions(real, generated, out)``: per joint, the distribution of its
  rotation angle relative to its parent (degrees), real vs generated, with the 1-D Wasserstein
  distance between them in each panel's title.
- ``plot_camera_histograms(store, out)``: a sample store's cameras: focal length, field of
  view, principal point offset, distance to the body, camera height, elevation, azimuth
  relative to the body's facing, roll, and the distortion coefficients.
- ``plot_keypoint_density(store, out)``: where a keypoint set's clean 2D keypoints fall in the
  image (log-scaled 2D histogram, image frame outlined), and per keypoint the share in frame
  and visible.
- ``plot_training_curves(jsonl, out)``: every numeric series of a training log
  (``metrics.jsonl``: one JSON object per line; nested objects such as ``{"eval": {...}}``
  become ``eval/<key>``), against ``step``.

``write_store_plots(store, out_dir)`` writes the figures that describe one store (for
``info --plots DIR``).  Each plot function writes one PNG at ``out`` (its folder is made) and
returns the path.  Store readers look
at the first ``max_samples`` rows only (samples are i.i.d., so the head of a store is a fair
sample and reading it stays fast on stores of millions).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from posesynth.errors import require_extra
from posesynth.skeleton import SMPL_JOINT_NAMES
from posesynth.stores import samples, training

REAL_COLOR = "#4C72B0"
GENERATED_COLOR = "#DD8452"


def _figure(rows: int, cols: int, width: float = 3.0, height: float = 2.3) -> tuple[Any, np.ndarray]:
    require_extra("render", "plotting", "matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(cols * width, rows * height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    return fig, axes


def _save(fig: Any, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out


def _grid(n: int, max_cols: int = 6) -> tuple[int, int]:
    cols = min(max_cols, max(1, n))
    return math.ceil(n / cols), cols


# ---------------------------------------------------------------------------- joint angles
def joint_angles_deg(poses: Any) -> np.ndarray:
    """Per-joint rotation angle (N, J) in degrees of poses given as axis-angle (N, 69) / (N, 72) /
    (N, J, 3), rotation matrices (N, J, 3, 3), or a mapping with ``body_pose`` (and optionally
    ``global_orient``) or ``rotmats`` (a ``PoseBatch`` works too)."""
    if isinstance(poses, Mapping) or hasattr(poses, "rotmats") or hasattr(poses, "body_pose"):
        get = poses.get if isinstance(poses, Mapping) else lambda k, d=None: getattr(poses, k, d)
        if get("rotmats") is not None:
            poses = get("rotmats")
        else:
            body = np.asarray(_numpy(get("body_pose")), dtype=np.float64)
            go = get("global_orient")
            poses = body if go is None else np.concatenate(
                [np.asarray(_numpy(go), dtype=np.float64).reshape(len(body), 3), body.reshape(len(body), -1)], axis=1)
    x = np.asarray(_numpy(poses), dtype=np.float64)
    if x.ndim == 4 and x.shape[-2:] == (3, 3):
        cos = (np.trace(x, axis1=-2, axis2=-1) - 1.0) / 2.0
        return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    if x.ndim == 2 and x.shape[1] % 3 == 0:
        x = x.reshape(len(x), -1, 3)
    if x.ndim == 3 and x.shape[-1] == 3:
        angle = np.linalg.norm(x, axis=-1)
        # Axis-angle norms above pi describe the same rotation as 2 pi minus them.
        angle = np.mod(angle, 2 * np.pi)
        return np.degrees(np.where(angle > np.pi, 2 * np.pi - angle, angle))
    raise ValueError(f"poses must be axis-angle (N, 69|72) or (N, J, 3), or rotation matrices (N, J, 3, 3); "
                     f"got shape {x.shape}")


def _numpy(x: Any) -> Any:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else x


def plot_joint_angle_distributions(real: Any, generated: Any, out: str | Path,
                                   joint_names: Sequence[str] | None = None, bins: int = 40,
                                   labels: tuple[str, str] = ("real", "generated")) -> Path:
    """Histograms (densities) of each joint's rotation angle, real vs generated; see ``joint_angles_deg``
    for the accepted pose formats.  With 24 joints the pelvis (global orientation) is included;
    body poses alone (23 joints) are named from ``left_hip`` on."""
    from scipy.stats import wasserstein_distance

    a, b = joint_angles_deg(real), joint_angles_deg(generated)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"real poses have {a.shape[1]} joints, generated {b.shape[1]}")
    J = a.shape[1]
    if joint_names is None:
        joint_names = SMPL_JOINT_NAMES[len(SMPL_JOINT_NAMES) - J:] if J <= len(SMPL_JOINT_NAMES) else \
            [f"joint {j}" for j in range(J)]
    rows, cols = _grid(J)
    fig, axes = _figure(rows, cols, 2.6, 1.9)
    for j in range(J):
        ax = axes[j]
        hi = max(np.percentile(a[:, j], 99.5), np.percentile(b[:, j], 99.5), 1.0)
        edges = np.linspace(0, hi, bins + 1)
        ax.hist(a[:, j], edges, density=True, color=REAL_COLOR, alpha=0.55, label=labels[0])
        ax.hist(b[:, j], edges, density=True, histtype="step", color=GENERATED_COLOR, lw=1.6, label=labels[1])
        emd = wasserstein_distance(a[:, j], b[:, j])
        ax.set_title(f"{joint_names[j]}  W1={emd:.1f}°", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_yticks([])
    for ax in axes[J:]:
        ax.set_axis_off()
    axes[0].legend(fontsize=7, frameon=False)
    fig.suptitle(f"joint rotation angle relative to the parent (degrees): {labels[0]} n={len(a)}, "
                 f"{labels[1]} n={len(b)}", fontsize=10)
    return _save(fig, out)


# ---------------------------------------------------------------------------- stores
def _open(store: Any) -> Any:
    if hasattr(store, "attrs") and hasattr(store, "__getitem__"):
        return store
    from posesynth.store import open_store

    return open_store(store)


def camera_parameters(store: Any, max_samples: int = 100_000) -> dict[str, np.ndarray]:
    """Derived camera parameters of the first ``max_samples`` rows of a sample store, all views
    flattened: ``{name: (n * V,)}`` (see ``plot_camera_histograms`` for the names)."""
    from scipy.spatial.transform import Rotation

    g = _open(store)
    if samples.camera_path("K") not in g:
        raise ValueError("this store has no cameras (a training store?)")
    n = min(int(g[samples.camera_path("K")].shape[0]), int(max_samples))
    cam = {p: np.asarray(g[samples.camera_path(p)][:n], dtype=np.float64) for p in ("K", "R", "t", "image_size")}
    K, R, t, size = cam["K"], cam["R"], cam["t"], cam["image_size"]  # (n, V, 3, 3), (n, V, 3, 3), (n, V, 3), (n, V, 2)
    dist = (np.asarray(g[samples.camera_path("distortion")][:n], dtype=np.float64)
            if samples.camera_path("distortion") in g else np.zeros(K.shape[:2] + (4,)))  # (n, V, 4)
    V = K.shape[1]
    centre = -np.einsum("nvji,nvj->nvi", R, t)  # -R^T t
    if samples.keypoints_path("smpl24", "world") in g:
        target = np.asarray(g[samples.keypoints_path("smpl24", "world")][:n, 0], dtype=np.float64)  # (n, 3) pelvis
    else:
        target = np.zeros((n, 3))
    rel = centre - target[:, None]
    horiz = np.linalg.norm(rel[..., [0, 2]], axis=-1)
    if samples.smpl_path("global_orient") in g:
        orient = np.asarray(g[samples.smpl_path("global_orient")][:n], dtype=np.float64)  # (n, 3)
        facing = Rotation.from_rotvec(orient).apply([0.0, 0.0, 1.0])
        body_yaw = np.arctan2(facing[:, 0], facing[:, 2])
    else:
        body_yaw = np.zeros(n)
    azimuth = np.degrees(np.arctan2(rel[..., 0], rel[..., 2]) - body_yaw[:, None])
    azimuth = (azimuth + 180.0) % 360.0 - 180.0
    x_axis, y_axis = R[..., 0, :], R[..., 1, :]  # camera right and down, in world coordinates
    roll = np.degrees(np.arctan2(x_axis[..., 1], -y_axis[..., 1]))  # 0: world up is image up
    out = {
        "focal_px": K[..., 0, 0],
        "fov_deg": np.degrees(2 * np.arctan(size[..., 0] / 2 / K[..., 0, 0])),
        "cx_offset_px": K[..., 0, 2] - (size[..., 0] - 1) / 2,
        "cy_offset_px": K[..., 1, 2] - (size[..., 1] - 1) / 2,
        "distance_m": np.linalg.norm(rel, axis=-1),
        "height_m": centre[..., 1],
        "elevation_deg": np.degrees(np.arctan2(rel[..., 1], horiz)),
        "azimuth_deg": azimuth,
        "roll_deg": roll,
        "k1": dist[..., 0], "k2": dist[..., 1], "p1": dist[..., 2], "p2": dist[..., 3],
    }
    return {k: np.asarray(v, dtype=np.float64).reshape(n * V) for k, v in out.items()}


_CAMERA_TITLES = {
    "focal_px": "focal length fx (px)", "fov_deg": "horizontal field of view (°)",
    "cx_offset_px": "cx − image centre (px)", "cy_offset_px": "cy − image centre (px)",
    "distance_m": "distance to the pelvis (m)", "height_m": "camera height above the floor (m)",
    "elevation_deg": "elevation over the pelvis (°)", "azimuth_deg": "azimuth from the body's front (°)",
    "roll_deg": "roll (°)", "k1": "k1", "k2": "k2", "p1": "p1", "p2": "p2",
}


def plot_camera_histograms(store: Any, out: str | Path, max_samples: int = 100_000, bins: int = 40) -> Path:
    """Histograms of a sample store's camera parameters (``camera_parameters``); distortion
    coefficients that are zero everywhere are left out."""
    params = camera_parameters(store, max_samples)
    names = [k for k in params if not (k in ("k1", "k2", "p1", "p2") and not np.any(params[k]))]
    rows, cols = _grid(len(names), 4)
    fig, axes = _figure(rows, cols, 3.0, 2.2)
    for ax, name in zip(axes, names):
        v = params[name]
        lo, hi = float(v.min()), float(v.max())
        if hi - lo < 1e-9:
            lo, hi = lo - 0.5, hi + 0.5
        ax.hist(v, np.linspace(lo, hi, bins + 1), color=REAL_COLOR)
        ax.set_title(_CAMERA_TITLES[name], fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes[len(names):]:
        ax.set_axis_off()
    n = len(next(iter(params.values())))
    fig.suptitle(f"cameras of {n} views", fontsize=10)
    return _save(fig, out)


def plot_keypoint_density(store: Any, out: str | Path, keypoint_set: str = "smpl24", max_samples: int = 100_000,
                          bins: int = 96) -> Path:
    """Where the clean 2D keypoints of ``keypoint_set`` fall in the image (all views), and per
    keypoint the share in frame (visible bit 0) and visible (== 3).  Pixels when every image has
    the same size, else fractions of the width and height."""
    g = _open(store)
    pixels, visible = samples.keypoints_path(keypoint_set, "pixels"), samples.keypoints_path(keypoint_set, "visible")
    if pixels not in g:
        raise ValueError(f"this store has no 2D keypoints of {keypoint_set!r}")
    n = min(int(g[pixels].shape[0]), int(max_samples))
    pix = np.asarray(g[pixels][:n], dtype=np.float64)  # (n, V, J, 2)
    size = np.asarray(g[samples.camera_path("image_size")][:n], dtype=np.float64)  # (n, V, 2)
    vis = np.asarray(g[visible][:n]) if visible in g else np.full(pix.shape[:-1], samples.VISIBLE, np.uint8)
    names = g.attrs.get("keypoint_sets", {}).get(keypoint_set, {}).get("joint_names") or \
        [f"{j}" for j in range(pix.shape[2])]
    same = np.all(size == size.reshape(-1, 2)[0])
    if same:
        W, H = size.reshape(-1, 2)[0]
        xy, frame = pix.reshape(-1, 2), (W, H)
        unit = "px"
    else:
        xy = ((pix + 0.5) / size[:, :, None] - 0.0).reshape(-1, 2)
        frame, unit = (1.0, 1.0), "fraction of the image"
    xy = xy[np.isfinite(xy).all(1)]
    fw, fh = frame
    lo = np.minimum(np.percentile(xy, 0.5, axis=0), [-0.5 if same else 0.0] * 2)
    hi = np.maximum(np.percentile(xy, 99.5, axis=0), [fw - 0.5 if same else 1.0, fh - 0.5 if same else 1.0])
    pad = 0.03 * (hi - lo)
    lo, hi = lo - pad, hi + pad

    J = pix.shape[2]
    fig, axes = _figure(1, 2, 5.0, 4.4)
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Rectangle

    ax = axes[0]
    counts, xe, ye = np.histogram2d(xy[:, 0], xy[:, 1], bins=bins, range=[[lo[0], hi[0]], [lo[1], hi[1]]])
    counts = np.ma.masked_equal(counts, 0)
    mesh = ax.pcolormesh(xe, ye, counts.T, norm=LogNorm(vmin=1, vmax=max(1, counts.max())), cmap="magma_r")
    fig.colorbar(mesh, ax=ax, label="keypoints per bin", shrink=0.8)
    x0 = -0.5 if same else 0.0
    ax.add_patch(Rectangle((x0, x0), fw, fh, fill=False, ec="#2a9d8f", lw=1.5, ls="--"))
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(hi[1], lo[1])  # image convention: y down
    ax.set_aspect("equal")
    ax.set_xlabel(f"u ({unit})")
    ax.set_ylabel(f"v ({unit})")
    in_frame = (vis & samples.VISIBLE_IN_FRAME).astype(bool)
    ax.set_title(f"{keypoint_set}: {xy.shape[0]} keypoints, {100 * in_frame.mean():.1f}% in frame", fontsize=10)

    ax = axes[1]
    y = np.arange(J)
    ax.barh(y, in_frame.reshape(-1, J).mean(0), color="#cfd8dc", label="in frame")
    ax.barh(y, (vis == samples.VISIBLE).reshape(-1, J).mean(0), color=REAL_COLOR, height=0.5,
            label=f"visible (= {samples.VISIBLE})")
    ax.set_yticks(y, [str(x) for x in names], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of views")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("per keypoint", fontsize=10)
    return _save(fig, out)


# ---------------------------------------------------------------------------- training logs
def read_training_log(jsonl: str | Path, x_key: str = "step") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Numeric series of a JSON-lines log: ``{name: (x, y)}``; nested objects are flattened to
    ``outer/inner``; ``x`` is ``x_key`` where a record has it, else the record's line number."""
    series: dict[str, tuple[list[float], list[float]]] = {}

    def walk(prefix: str, value: Any, x: float) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(f"{prefix}/{k}" if prefix else str(k), v, x)
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            xs, ys = series.setdefault(prefix, ([], []))
            xs.append(x)
            ys.append(float(value))

    with open(jsonl, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{jsonl}:{line_no + 1}: not JSON ({exc.msg})") from None
            if not isinstance(record, Mapping):
                continue
            x = record.get(x_key, line_no)
            x = float(x) if isinstance(x, (int, float)) else float(line_no)
            walk("", {k: v for k, v in record.items() if k not in (x_key, "seconds", "time", "epoch")}, x)
    return {k: (np.asarray(xs), np.asarray(ys)) for k, (xs, ys) in series.items()}


def plot_training_curves(jsonl: str | Path, out: str | Path, x_key: str = "step", smooth: int = 0) -> Path:
    """One panel per numeric series of a training log (``read_training_log``).  Series with many
    points are drawn faint with a moving average on top (``smooth`` points; 0: about 2 % of them)."""
    series = read_training_log(jsonl, x_key)
    if not series:
        raise ValueError(f"{jsonl}: no numeric series to plot")
    rows, cols = _grid(len(series), 4)
    fig, axes = _figure(rows, cols, 3.2, 2.3)
    for ax, (name, (x, y)) in zip(axes, series.items()):
        k = smooth or max(1, len(y) // 50)
        if k > 1 and len(y) > 2 * k:
            ax.plot(x, y, color=REAL_COLOR, alpha=0.25, lw=0.8)
            kernel = np.ones(k) / k
            ax.plot(x[k - 1:], np.convolve(y, kernel, mode="valid"), color=REAL_COLOR, lw=1.5)
        else:
            ax.plot(x, y, color=REAL_COLOR, lw=1.5, marker="o" if len(y) < 30 else None, ms=3)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.set_xlabel(x_key, fontsize=8)
    for ax in axes[len(series):]:
        ax.set_axis_off()
    return _save(fig, out)


# ---------------------------------------------------------------------------- for `info --plots DIR`
def write_store_plots(store: Any, out_dir: str | Path, max_samples: int = 100_000) -> list[Path]:
    """The figures that describe a store, written into ``out_dir``: for a sample store
    ``cameras.png`` and ``keypoints_<set>.png`` per keypoint set; for a training store
    ``joint_angles.png`` (its training rows against its validation rows)."""
    g = _open(store)
    out_dir = Path(out_dir)
    kind = g.attrs.get("posesynth", {}).get("kind")
    paths: list[Path] = []
    if kind == samples.KIND:
        if samples.camera_path("K") in g:
            paths.append(plot_camera_histograms(g, out_dir / "cameras.png", max_samples))
        for name in g.attrs.get("keypoint_sets", {}) or ["smpl24"]:
            if samples.keypoints_path(name, "pixels") in g:
                paths.append(plot_keypoint_density(g, out_dir / f"keypoints_{name}.png", name, max_samples))
    elif kind == training.KIND:
        body_pose = g[training.smpl_path("body_pose")]
        n = min(int(body_pose.shape[0]), int(max_samples))
        pose = np.asarray(body_pose[:n])  # (n, 69)
        split = np.asarray(g[training.SPLIT_PATH][:n]) if training.SPLIT_PATH in g else np.zeros(n, np.uint8)
        if (split == 1).any() and (split == 0).any():
            paths.append(plot_joint_angle_distributions(pose[split == 0], pose[split == 1],
                                                        out_dir / "joint_angles.png", labels=("train", "val")))
    return paths
