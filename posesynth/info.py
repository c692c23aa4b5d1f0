"""``posesynth info STORE``: what a training or sample store holds.

``store_info`` gathers it as a JSON-ready dict; ``format_info`` prints it.  An incomplete store
is described (and said to be incomplete) rather than refused, so an interrupted run can be
inspected.  Statistics stream over the store one shard at a time: memory does not grow with it.
"""

from __future__ import annotations

import shlex
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from posesynth.store import ATTR, damaged_store_error, incomplete_store_error, open_store
from posesynth.stores import checked_arrays, samples, training
from posesynth.stores.arrays import read_array

STATS_ROWS = 65536  # rows read at a time for the statistics


def disk_size(path: Path) -> int:
    """Bytes of every file under ``path``."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _rows(arr: zarr.Array) -> int:
    return arr.shape[0] if arr.ndim else 0


def store_info(path: str | Path) -> dict[str, Any]:
    """Counts, arrays, attributes summary and statistics of the store at ``path``."""
    path = Path(path)
    group = open_store(path, allow_incomplete=True)
    meta = dict(group.attrs[ATTR])
    arrays = checked_arrays(group)
    _check_parts(path, group, meta, arrays)
    info: dict[str, Any] = {
        "path": str(path),
        "kind": meta.get("kind"),
        "complete": bool(meta.get("complete")),
        "schema_version": meta.get("schema_version"),
        "posesynth_version": meta.get("version"),
        "zarr_format": group.metadata.zarr_format,
        "rows": max((_rows(a) for a in arrays.values()), default=0),
        "disk_bytes": disk_size(path),
        "body_model": group.attrs.get("body_model"),
        "shape_space": group.attrs.get("shape_space"),  # None: a store that predates it
        "run": group.attrs.get("run"),  # posesynth.run_record; None: a store that predates it
        "arrays": {name: {"shape": list(a.shape), "dtype": str(a.dtype), "chunks": list(a.chunks),
                          "shards": None if getattr(a, "shards", None) is None else list(a.shards)}
                   for name, a in arrays.items()},
    }
    if meta.get("kind") == samples.KIND:
        info.update(_sample_info(group, arrays))
    elif meta.get("kind") == training.KIND:
        info.update(_training_info(group))
    return info


# What the description of each kind of store reads: attributes, then arrays.
_NEEDED = {samples.KIND: (("recipe", "seed", "source", "labels", "keypoint_sets", "shards_done"),
                          (samples.LABEL_PATH, samples.camera_path("K"), samples.keypoints_path("smpl24", "camera"))),
           training.KIND: (("fps", "labels", "splits"), (training.SPLIT_PATH, training.label_path("source")))}


def _check_parts(path: Path, group: zarr.Group, meta: dict[str, Any], arrays: dict[str, zarr.Array]) -> None:
    """StoreError naming what is missing when the store lacks an attribute or array it should hold
    (a run stopped while creating the store, or a damaged one)."""
    attrs_needed, arrays_needed = _NEEDED.get(meta.get("kind"), ((), ()))
    for what, missing in (("attributes", [k for k in attrs_needed if k not in group.attrs]),
                          ("arrays", [k for k in arrays_needed if k not in arrays])):
        if missing and not meta.get("complete"):
            raise incomplete_store_error(path, what, missing)
        if missing:
            raise damaged_store_error(path, f"marked complete, but {what} missing ({', '.join(missing)})")


def _sample_info(group: zarr.Group, arrays: dict[str, zarr.Array]) -> dict[str, Any]:
    attrs = group.attrs
    recipe = attrs.get("recipe", {})
    n = arrays[samples.LABEL_PATH].shape[0]
    shards = recipe.get("sample", {}).get("shard_size") or n
    out: dict[str, Any] = {
        "seed": attrs.get("seed"),
        "source": attrs.get("source"),
        "labels": len(attrs.get("labels", [])),
        "views": arrays[samples.camera_path("K")].shape[1],
        "keypoint_sets": {name: len(s["joint_names"]) for name, s in attrs.get("keypoint_sets", {}).items()},
        "noisy_2d": any(name.endswith("/" + samples.NOISY) for name in arrays),
        "recipe": _recipe_summary(recipe),
        "shards_done": f"{len(attrs.get('shards_done', []))} of {-(-n // shards)}",
    }
    # An incomplete store's unwritten rows read as zeros: describe only the finished shards.
    done = attrs.get("shards_done", []) if not attrs[ATTR].get("complete") else range(-(-n // shards))
    out["statistics"] = _sample_statistics(arrays, [(s * shards, min(n, (s + 1) * shards)) for s in done])
    return out


def _recipe_summary(recipe: dict[str, Any]) -> dict[str, Any]:
    cam = recipe.get("camera", {})
    s = recipe.get("sample", {})
    keys = ("preset", "image_size", "focal_px", "fov_deg", "distance_m", "elevation_deg", "allow_truncation")
    return {"camera": {k: cam[k] for k in keys if cam.get(k) not in (None, [], {})},
            "label": s.get("label") or None, "betas": s.get("betas"), "noise": s.get("noise"),
            "block_size": s.get("block_size")}


class _Running:
    """Mean, min and max of a stream of arrays."""

    def __init__(self) -> None:
        self.total, self.count, self.lo, self.hi = 0.0, 0, np.inf, -np.inf

    def add(self, x: np.ndarray) -> None:
        if x.size:
            self.total += float(x.sum(dtype=np.float64))
            self.count += x.size
            self.lo, self.hi = min(self.lo, float(x.min())), max(self.hi, float(x.max()))

    def result(self) -> dict[str, float] | None:
        if not self.count:
            return None
        return {"mean": self.total / self.count, "min": self.lo, "max": self.hi}


def _sample_statistics(arrays: dict[str, zarr.Array], ranges: list[tuple[int, int]]) -> dict[str, Any]:
    """Camera distance to the pelvis (m), focal length (px), and per set the visible fraction."""
    stats = {"camera_distance_m": _Running(), "focal_px": _Running()}
    sets = samples.keypoint_set_names(arrays)
    for s in sets:
        stats[f"visible_fraction/{s}"] = _Running()
    for start, stop in ranges:
        for lo in range(start, stop, STATS_ROWS):
            rows = slice(lo, min(stop, lo + STATS_ROWS))
            pelvis = read_array(arrays[samples.keypoints_path("smpl24", "camera")], rows)[:, :, 0]  # (n, V, 3)
            stats["camera_distance_m"].add(np.linalg.norm(pelvis, axis=-1))
            stats["focal_px"].add(read_array(arrays[samples.camera_path("K")], rows)[:, :, 0, 0])  # (n, V)
            for s in sets:
                visible = read_array(arrays[samples.keypoints_path(s, "visible")], rows)  # (n, V, J)
                stats[f"visible_fraction/{s}"].add((visible == samples.VISIBLE).mean(-1))
    return {name: r.result() for name, r in stats.items()}


def _training_info(group: zarr.Group) -> dict[str, Any]:
    attrs = group.attrs
    split = read_array(group[training.SPLIT_PATH])
    source = read_array(group[training.label_path("source")])
    sources = attrs["labels"]["source"]
    return {
        "fps": attrs.get("fps"),
        "splits": {name: int((split == i).sum()) for i, name in enumerate(attrs.get("splits", []))},
        "frames_per_source": {name: int((source == i).sum()) for i, name in enumerate(sources)},
        "labels": {name: len(vocab) for name, vocab in attrs.get("labels", {}).items()},
        "skipped_files": len(attrs.get("skipped", [])),
    }


# ---------------------------------------------------------------------------- printing
def _bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def format_info(info: dict[str, Any]) -> str:
    """``store_info``'s dict as the text ``posesynth info`` prints."""
    state = "complete" if info["complete"] else "INCOMPLETE (interrupted or failed; readers refuse it)"
    lines = [
        f"{info['path']}: {info['kind']} store, {state}",
        f"  rows {info['rows']:,}   size on disk {_bytes(info['disk_bytes'])}   Zarr v{info['zarr_format']}   "
        f"schema {info['schema_version']}   written by posesynth {info['posesynth_version']}",
        f"  body model {info['body_model']}",
        *_format_shape_space(info["shape_space"]),
        *_format_run(info["run"]),
    ]
    if info["kind"] == samples.KIND:
        lines += _format_samples(info)
    elif info["kind"] == training.KIND:
        lines += _format_training(info)
    lines.append("  arrays:")
    width = max(len(n) for n in info["arrays"]) if info["arrays"] else 0
    for name, a in info["arrays"].items():
        layout = f"chunks {a['chunks'][0]}" + (f", shards {a['shards'][0]}" if a["shards"] else "")
        lines.append(f"    {name:<{width}}  {str(tuple(a['shape'])):<22} {a['dtype']:<8} {layout}")
    return "\n".join(lines)


def _format_shape_space(space: dict[str, Any] | None) -> list[str]:
    """What the store's betas mean (``body_model.shape_space``), wrapped; nothing for a store
    that predates the attribute."""
    if space is None:
        return []
    return textwrap.wrap(f"shape space {space['kind']}, {space['num_betas']} betas: {space['betas']}",
                         width=100, initial_indent="  ", subsequent_indent="    ")


def _format_run(run: dict[str, Any] | None) -> list[str]:
    """When, where and how the store was written (``posesynth.run_record``); nothing for a store
    that predates the record."""
    if run is None:
        return []
    packages = ", ".join(f"{name} {v or 'not installed'}" for name, v in run["packages"].items())
    command = shlex.join(run["command"]) if run["command"] else "none (a program called the library)"
    return [f"  run {run['created']} on {run['device']} ({run['platform']})",
            f"    Python {run['python']}, {packages}",
            f"    command {command}"]


def _format_samples(info: dict[str, Any]) -> list[str]:
    src = info["source"] or {}
    r = info["recipe"]
    lines = [
        f"  source {src.get('identity')}" + (f" (sha256 {src['sha256'][:16]}…)" if src.get("sha256") else ""),
        f"  seed {info['seed']}   views {info['views']}   labels {info['labels']}   label {r['label'] or '(none)'}"
        f"   betas {r['betas']}   noisy 2D {'yes' if info['noisy_2d'] else 'no'}   shards done {info['shards_done']}",
        "  keypoint sets: " + ", ".join(f"{k} ({v})" for k, v in info["keypoint_sets"].items()),
        "  camera: " + ", ".join(f"{k} {v}" for k, v in r["camera"].items()),
        "  statistics (mean [min, max]):",
    ]
    for name, s in info["statistics"].items():
        value = "n/a" if s is None else f"{s['mean']:.3f} [{s['min']:.3f}, {s['max']:.3f}]"
        lines.append(f"    {name:<28} {value}")
    return lines


def _format_training(info: dict[str, Any]) -> list[str]:
    return [
        f"  fps {info['fps']}   splits " + ", ".join(f"{k} {v:,}" for k, v in info["splits"].items())
        + f"   skipped files {info['skipped_files']}",
        "  frames per source: " + ", ".join(f"{k} {v:,}" for k, v in info["frames_per_source"].items()),
        "  label vocabularies: " + ", ".join(f"{k} {v}" for k, v in info["labels"].items()),
    ]


def info_text(path: str | Path) -> str:
    """What ``posesynth info`` prints for the store at ``path``."""
    return format_info(store_info(path))

