"""``posesynth prepare``: mocap files -> the training store.

For every motion file under the given folders: read it (``posesynth.mocap``),
resample it to the target frame rate, place SMPL's joints on it with its rig map,
retarget (``posesynth.retarget``) with betas fitted once per subject, and write
everything with labels and a validation split into one Zarr store.

The validation split holds out whole files (a seeded, stratified fraction of
each source/content group) and, on request, whole subjects or whole contents;
frames of one clip are never on both sides.

Shapes: T frames of a clip (after resampling), J joints of a source skeleton, 24 SMPL joints,
K betas, N frames of the store.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from posesynth.body_model import BodyModel, load_body_model, shape_space
from posesynth.config import Recipe, RecipeError, Section, load_recipe, read_recipe
from posesynth.errors import PosesynthError
from posesynth.labels import FileLabels, labels_for
from posesynth.mocap import MocapFormatError, read_motion
from posesynth.mocap.keypoints import KEYPOINT_SUFFIXES, read_keypoints
from posesynth.resources import packaged_path
from posesynth.retarget import Retargeted, fit_betas, retarget, retarget_errors
from posesynth.rig_map import RigMap, RigMapError, detect_rig, load_rig_map
from posesynth.rotations import matrix_to_axis_angle
from posesynth.run_record import run_record
from posesynth.skeleton import SMPL_JOINT_NAMES, SMPL_PARENTS
from posesynth.store import add_array, create_store, mark_complete, writing_store
from posesynth.stores.training import (
    FRAME_PATH, JOINTS_PATH, KIND, LABEL_FIELDS, SPLIT_PATH, SPLITS, dimension_names, label_path, smpl_path,
)

MOTION_SUFFIXES = (".bvh", ".amc")
DEFAULT_SPLIT = packaged_path("recipes", "split_default.toml")


class PrepareError(PosesynthError, RuntimeError):
    """``prepare`` cannot go on (bad arguments, or --strict and a file failed)."""


@dataclass(frozen=True)
class PrepareOptions:
    fps: float = 30.0
    # the split: split_default.toml's values unless given (the TOML is the one default)
    val_fraction: float = field(default_factory=lambda: _shipped_split().val_fraction)
    val_subjects: tuple[str, ...] = field(default_factory=lambda: tuple(_shipped_split().val_subjects))
    val_contents: tuple[str, ...] = field(default_factory=lambda: tuple(_shipped_split().val_contents))
    seed: int = field(default_factory=lambda: _shipped_split().seed)
    strict: bool = False
    workers: int = 2
    rig: str | None = None  # a rig name or TOML path for every file; None: detect per file
    keypoint_layout: str | None = None  # rig for keypoint arrays without joint names
    keypoint_up: str = "y"

    def __post_init__(self) -> None:
        if isinstance(self.fps, bool) or not isinstance(self.fps, (int, float)) or not 0 < self.fps < math.inf:
            raise PrepareError(f"--fps must be a positive number of frames per second, got {self.fps!r}")
        check_val_fraction(self.val_fraction, "--val-fraction", PrepareError)
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise PrepareError(f"--workers must be a whole number >= 1, got {self.workers!r}")
        if self.keypoint_up not in ("y", "z"):
            raise PrepareError(f"--keypoint-up must be y or z, got {self.keypoint_up!r}")
        for option, rig in (("--rig", self.rig), ("--keypoint-layout", self.keypoint_layout)):
            if rig:
                try:
                    load_rig_map(rig)
                except RigMapError as exc:
                    raise PrepareError(f"{option} {rig}: {exc}") from None


def check_val_fraction(value: Any, where: str, error: type[Exception]) -> None:
    """``error`` unless ``value`` is a fraction of files to hold out: a number in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise error(f"{where} must be a number in [0, 1), got {value!r}")


@dataclass
class Clip:
    """One file after reading, resampling and rig mapping (the per-file worker's output)."""

    path: Path
    labels: FileLabels
    rig: str
    subject_key: str
    frames: np.ndarray  # (T,) frame index in the source file
    source_frames: int
    targets: np.ndarray  # (T, 24, 3)
    frame_rotations: np.ndarray | None  # (T, 24, 3, 3)
    frame_mask: np.ndarray | None  # (24,)


@dataclass
class PrepareSummary:
    files: int = 0
    source_frames: int = 0
    frames: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    per_source: dict[str, dict[str, float]] = field(default_factory=dict)
    retarget: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0




def discover(paths: Iterable[str | Path]) -> list[tuple[Path, Path]]:
    """Every motion or keypoint file under ``paths`` as (file, data root), sorted."""
    found: list[tuple[Path, Path]] = []
    suffixes = MOTION_SUFFIXES + KEYPOINT_SUFFIXES
    for p in map(Path, paths):
        if p.is_dir():
            found += [(f, p) for f in sorted(p.rglob("*")) if f.suffix.lower() in suffixes and f.is_file()]
        elif p.is_file():
            found.append((p, p.parent))
        else:
            raise PrepareError(f"{p}: no such file or folder")
    return found


def resample_indices(num_frames: int, fps_in: float, fps_out: float) -> np.ndarray:
    """Nearest-frame indices (T_out,) that play ``num_frames`` at ``fps_in`` at ``fps_out``.

    Exact decimation when the rates divide (120 -> 30 keeps every 4th frame); otherwise
    each output frame takes the nearest input frame (at most half a frame off).
    """
    if fps_out >= fps_in:
        return np.arange(num_frames)
    times = np.arange(0.0, (num_frames - 1) / fps_in + 1e-9, 1.0 / fps_out)
    return np.unique(np.minimum(np.round(times * fps_in).astype(np.int64), num_frames - 1))


def _skeleton_fingerprint(positions: np.ndarray, parents: Sequence[int]) -> str:
    """Hash of the source's rigid bone lengths (``positions``: (T, J, 3) metres), to the millimetre.

    Bones whose length changes over the clip (a root carrying the global translation,
    as Bandai's joint_Root -> Hips does) are left out.
    """
    idx = np.array([j for j, p in enumerate(parents) if p >= 0])
    par = np.array([parents[j] for j in idx])
    with np.errstate(over="ignore", invalid="ignore"):  # a bone of absurd length is just not rigid
        lengths = np.linalg.norm(positions[:, idx] - positions[:, par], axis=-1)  # (T, B)
        rigid = np.ptp(lengths, axis=0) < 1e-3
    key = np.round(lengths[0, rigid] * 1000).astype(np.int64)
    return hashlib.sha1(idx[rigid].tobytes() + key.tobytes()).hexdigest()[:10]


def _rig_for(names: Sequence[str], opts: PrepareOptions, path: Path, layout: str | None = None) -> RigMap:
    if layout:
        return load_rig_map(layout)
    if opts.rig:
        return load_rig_map(opts.rig)
    return detect_rig(list(names), where=str(path))


def load_clip(path: Path, root: Path, opts: PrepareOptions) -> Clip:
    """Read one file and map it onto SMPL's joints; raises MocapFormatError/RigMapError."""
    labels = labels_for(path, root)
    if path.suffix.lower() in KEYPOINT_SUFFIXES:
        kp = read_keypoints(path, layout=opts.keypoint_layout, up=opts.keypoint_up)
        rig = _rig_for(kp.joint_names, opts, path, kp.layout)
        keep = resample_indices(len(kp.positions), kp.fps, opts.fps)
        bound = rig.bind(kp.joint_names)
        return Clip(path, labels, rig.name, labels.subject, keep, len(kp.positions),
                    bound.targets(kp.positions[keep]), None, None)
    motion = read_motion(path)
    rig = _rig_for(motion.joint_names, opts, path)
    bound = rig.bind(motion.joint_names)
    keep = resample_indices(motion.num_frames, motion.fps, opts.fps)
    rotations, mask = bound.frame_rotations(motion.rotations[keep])
    subject = f"{labels.subject}/{_skeleton_fingerprint(motion.positions, motion.parents)}"
    return Clip(path, labels, rig.name, subject, keep, motion.num_frames,
                bound.targets(motion.positions[keep]), rotations, mask)


def _load_or_error(args: tuple[Path, Path, PrepareOptions]) -> Clip | tuple[str, str]:
    path, root, opts = args
    try:
        return load_clip(path, root, opts)
    except (MocapFormatError, RigMapError) as exc:
        return (str(path), str(exc))


def _load_all(files: list[tuple[Path, Path]], opts: PrepareOptions, summary: PrepareSummary,
              progress: bool) -> list[Clip]:
    jobs = [(f, r, opts) for f, r in files]
    bar = tqdm(total=len(jobs), desc="reading", unit="file", disable=not progress)
    clips: list[Clip] = []

    def take(result: Clip | tuple[str, str]) -> None:
        bar.update()
        if isinstance(result, Clip):
            clips.append(result)
        else:
            _skip(Path(result[0]), result[1], opts, summary)

    with bar:
        if opts.workers > 1 and len(jobs) > 1:
            with ProcessPoolExecutor(max_workers=opts.workers) as pool:
                for result in pool.map(_load_or_error, jobs, chunksize=4):
                    take(result)
        else:
            for job in jobs:
                take(_load_or_error(job))
    return clips


def _subject_betas(clips: list[Clip], template: np.ndarray, dirs: np.ndarray, opts: PrepareOptions,
                   summary: PrepareSummary) -> dict[str, np.ndarray]:
    """One shape (K,) per subject, fitted to all of that subject's frames (every 4th) with the body's
    ``template`` (24, 3) and ``dirs`` (24, 3, K) (``BodyModel.joint_shape_basis``); the files of a
    subject whose shape cannot be fitted are skipped."""
    by_subject: dict[str, list[Clip]] = defaultdict(list)
    for c in clips:
        by_subject[c.subject_key].append(c)
    betas = {}
    for key, own in sorted(by_subject.items()):
        try:
            betas[key] = fit_betas(np.concatenate([c.targets[::4] for c in own]), template, dirs)
        except ValueError as exc:
            for c in own:
                _skip(c.path, f"{c.path}: cannot fit the subject's body shape ({exc})", opts, summary)
    return betas


@dataclass(frozen=True)
class SplitSection(Section):
    """``[split]``: the validation split ``prepare`` writes (``split_files``)."""

    NAME = "split"

    val_fraction: float  # of the remaining files of every (source, content) group
    val_subjects: list[str]  # held out whole
    val_contents: list[str]  # held out whole
    seed: int

    def check(self) -> None:
        check_val_fraction(self.val_fraction, "split.val_fraction", RecipeError)


@dataclass(frozen=True)
class SplitRecipe(Recipe):
    """A split recipe (``posesynth prepare --split``)."""

    split: SplitSection


def load_split(path: str | Path | None = None) -> SplitSection:
    """The ``[split]`` of ``posesynth/recipes/split_default.toml`` <- the split recipe at ``path``
    (keys it does not list keep split_default's values)."""
    return load_recipe(SplitRecipe, read_recipe(DEFAULT_SPLIT), str(DEFAULT_SPLIT), path).split


@functools.cache
def _shipped_split() -> SplitSection:
    """split_default.toml's ``[split]``, read once (``PrepareOptions``' four split defaults)."""
    return load_split()


def split_files(labels: list[FileLabels], opts: PrepareOptions) -> set[str]:
    """The files held out for validation: whole subjects/contents on request, then a seeded
    ``val_fraction`` of the files of every (source, content) group, rounded half up."""
    held = {lab.file for lab in labels if lab.subject in opts.val_subjects or lab.content in opts.val_contents}
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for lab in labels:
        if lab.file not in held:
            groups[(lab.source, lab.content)].append(lab.file)
    for files in groups.values():
        k = math.floor(opts.val_fraction * len(files) + 0.5)
        order = sorted(files, key=lambda f: hashlib.sha1(f"{opts.seed}:{f}".encode()).hexdigest())
        held.update(order[:k])
    return held


def _encode(values: list[str]) -> tuple[np.ndarray, list[str]]:
    """Label codes (N,) int32 into the sorted vocabulary of ``values``, and the vocabulary."""
    vocab = sorted(set(values))
    index = {v: i for i, v in enumerate(vocab)}
    return np.array([index[v] for v in values], dtype=np.int32), vocab


def prepare(paths: Sequence[str | Path], out: str | Path, opts: PrepareOptions | None = None, *,
            body_model: str | Path | None = None, overwrite: bool = False, progress: bool = True) -> PrepareSummary:
    """Build the training store at ``out`` from the motion files under ``paths``.

    The store is locked for writing before the files are read (``posesynth.store.writing_store``),
    so an existing store without ``overwrite`` or a concurrent writer is refused at once; one
    that is replaced stays as it was until the new store is complete.  Files that cannot be
    used (unreadable, or giving values that are not finite in the stored float32) are skipped
    and listed in ``summary.skipped``, or stop the run with ``opts.strict``.  ``opts``
    defaults to ``PrepareOptions()``: split_default.toml's split.
    """
    opts = PrepareOptions() if opts is None else opts
    start = time.perf_counter()
    files = discover(paths)
    if not files:
        raise PrepareError(f"no motion files ({', '.join(MOTION_SUFFIXES + KEYPOINT_SUFFIXES)}) under "
                           f"{', '.join(map(str, paths))}")
    body = load_body_model(body_model)
    with writing_store(out, overwrite=overwrite, can_resume=False) as target:
        summary = PrepareSummary(files=len(files))
        clips = _load_all(files, opts, summary, progress)
        template, dirs = (t.double().numpy() for t in body.joint_shape_basis())
        betas = _subject_betas(clips, template, dirs, opts, summary)
        clips = [c for c in clips if c.subject_key in betas]
        held = split_files([c.labels for c in clips], opts)
        columns: dict[str, list[np.ndarray]] = defaultdict(list)
        label_values: dict[str, list[str]] = defaultdict(list)
        used = []
        for c in tqdm(clips, desc="retargeting", unit="file", disable=not progress):
            r = retarget(c.targets, template, dirs, c.frame_rotations, c.frame_mask, betas[c.subject_key])
            values = _stored_values(c, r, c.labels.file in held)
            if _finite(c, values, opts, summary):
                used.append(c)
                _collect(columns, label_values, c, values)
                summary.retarget[c.labels.file] = {"source": c.labels.source, "rig": c.rig, **retarget_errors(r)}
        if not used:
            raise PrepareError(f"no file could be used ({len(summary.skipped)} skipped):\n"
                               + "\n".join(skipped_lines(summary)))
        _count(summary, used, files)
        _write_store(target.path, columns, label_values, summary, opts, body, held & set(summary.retarget))
    summary.seconds = time.perf_counter() - start
    return summary


def skipped_lines(summary: PrepareSummary) -> list[str]:
    """One line per skipped file: ``skipped <file>: <why>``."""
    return [f"skipped {error}" for _, error in summary.skipped]


def _skip(path: Path, error: str, opts: PrepareOptions, summary: PrepareSummary) -> None:
    """List a file that cannot be used, or stop the run with ``--strict``; ``error`` is made to
    start with the file's name if it does not."""
    error = error if error.startswith(str(path)) else f"{path}: {error}"
    if opts.strict:
        raise PrepareError(f"{error}\n(--strict: stopping at the first file that cannot be used)")
    summary.skipped.append((str(path), error))


def _count(summary: PrepareSummary, used: list[Clip], files: list[tuple[Path, Path]]) -> None:
    """Per-source counts of the files used and skipped, and the totals."""
    for c in used:
        stats = _source_stats(summary, c.labels.source)
        stats["files"] += 1
        stats["source_frames"] += c.source_frames
        stats["frames"] += len(c.frames)
    root_of = {str(f): r for f, r in files}
    for path, _ in summary.skipped:
        stats = _source_stats(summary, labels_for(Path(path), root_of[path]).source)
        stats["skipped"] = stats.get("skipped", 0) + 1
    summary.source_frames = sum(c.source_frames for c in used)
    summary.frames = sum(len(c.frames) for c in used)


def _source_stats(summary: PrepareSummary, source: str) -> dict[str, float]:
    return summary.per_source.setdefault(source, {"files": 0, "source_frames": 0, "frames": 0})


def _stored_values(clip: Clip, r: Retargeted, is_val: bool) -> dict[str, np.ndarray]:
    """One clip's rows (T frames) of every per-frame array of the training store
    (``posesynth.stores.training``), in the dtype the store keeps them in."""
    T = len(clip.frames)
    return {
        smpl_path("global_orient"): matrix_to_axis_angle(r.global_orient).float().numpy(),  # (T, 3)
        smpl_path("body_pose"): matrix_to_axis_angle(r.body_pose).reshape(T, -1).float().numpy(),  # (T, 69)
        smpl_path("betas"): np.broadcast_to(r.betas.float().numpy(), (T, r.betas.shape[0])),  # (T, K)
        smpl_path("transl"): r.transl.float().numpy(),  # (T, 3)
        JOINTS_PATH: r.joints.float().numpy(),  # (T, 24, 3)
        FRAME_PATH: clip.frames.astype(np.int32),  # (T,)
        SPLIT_PATH: np.full(T, SPLITS.index("val") if is_val else 0, dtype=np.uint8),  # (T,)
    }


def _finite(clip: Clip, values: dict[str, np.ndarray], opts: PrepareOptions, summary: PrepareSummary) -> bool:
    """Whether every stored value of ``clip`` is finite; if not the file is skipped (or, with
    ``--strict``, stops the run) naming the arrays and the first frame at fault."""
    bad = {name: ~np.isfinite(v).reshape(len(v), -1).all(1) for name, v in values.items() if v.dtype.kind == "f"}
    bad = {name: rows for name, rows in bad.items() if rows.any()}
    if not bad:
        return True
    frame = int(clip.frames[min(int(np.argmax(rows)) for rows in bad.values())])
    _skip(clip.path, f"{clip.path}: values that are not finite in the stored float32 ({', '.join(bad)}), first at "
          f"frame {frame}: the file holds numbers out of any body's range", opts, summary)
    return False


def _collect(columns: dict[str, list[np.ndarray]], label_values: dict[str, list[str]], clip: Clip,
             values: dict[str, np.ndarray]) -> None:
    """Append one clip's rows (``_stored_values``, T each) and its T labels per label field."""
    for name, v in values.items():
        columns[name].append(v)
    for name in LABEL_FIELDS:
        label_values[name] += [getattr(clip.labels, name)] * len(clip.frames)


def _write_store(out: Path, columns: dict[str, list[np.ndarray]], label_values: dict[str, list[str]],
                 summary: PrepareSummary, opts: PrepareOptions, body: BodyModel, held: set[str]) -> None:
    labels = {name: _encode(values) for name, values in label_values.items()}
    attrs = {
        "fps": opts.fps,
        "body_model": body.identity,
        "shape_space": shape_space(body),
        "run": run_record("cpu"),
        "skeleton": {"joint_names": list(SMPL_JOINT_NAMES), "parents": list(SMPL_PARENTS)},
        "rotation_format": "axis-angle (radians), relative to the parent in SMPL's rest pose",
        "units": {"joints": "metres", "transl": "metres", "angles": "radians"},
        "labels": {name: vocab for name, (_, vocab) in labels.items()},
        "splits": list(SPLITS),
        "split_rule": {
            "val_fraction": opts.val_fraction, "seed": opts.seed, "val_subjects": list(opts.val_subjects),
            "val_contents": list(opts.val_contents), "held_out_files": sorted(held),
        },
        "skipped": [{"file": f, "error": e} for f, e in summary.skipped],
        "retarget": summary.retarget,
    }
    group = create_store(out, KIND, attrs)
    for name, parts in columns.items():
        add_array(group, name, np.concatenate(parts), rows_per_chunk=4096, rows_per_shard=65536,
                  dims=dimension_names(name))
    for name, (codes, _) in labels.items():
        add_array(group, label_path(name), codes, rows_per_chunk=4096, rows_per_shard=65536,
                  attrs={"vocabulary": f"attrs.labels.{name}"}, dims=dimension_names(label_path(name)))
    mark_complete(group, num_frames=summary.frames)


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))



def source_accuracy(summary: PrepareSummary, source: str) -> dict[str, float]:
    """Retargeting accuracy of one source over its files: median limb angle (median of the
    files' medians), median over files of the mean shared-joint error, and the worst file."""
    rows = [r for r in summary.retarget.values() if r["source"] == source]
    if not rows:
        nan = float("nan")
        return {"limb_angle_deg_median": nan, "shared_joint_error_mm_median": nan, "shared_joint_error_mm_max_file": nan}
    return {
        "limb_angle_deg_median": float(np.median([r["limb_angle_deg_median"] for r in rows])),
        "shared_joint_error_mm_median": float(np.median([r["shared_joint_error_mm"] for r in rows])),
        "shared_joint_error_mm_max_file": float(max(r["shared_joint_error_mm"] for r in rows)),
    }
