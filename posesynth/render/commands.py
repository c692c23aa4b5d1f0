"""The two ``posesynth render`` commands: a grid of a store's samples, or of a checkpoint's."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from posesynth.outputs import check_output
from posesynth.render.cells import legend_entries, render_cells
from posesynth.render.checkpoint import sample_checkpoint
from posesynth.render.grid import check_grid, make_grid, max_grid_cells, save_png
from posesynth.render.samples import SampleSet, read_store_samples


def render_store(path: str | Path, out: str | Path, indices: str | Sequence[int] = "0:16", view: str | None = None,
                 keypoint_set: str | None = "smpl24", body_model: str | Path | None = None, size: int = 512,
                 cols: int | None = None, backend: str = "auto", camera_view: int = 0,
                 overwrite: bool = False, progress: bool = False) -> Path:
    """``posesynth render STORE``: a PNG grid of a store's samples; returns the path written.

    ``view`` defaults to ``camera`` for sample stores and ``front`` for training stores.  An
    existing ``out`` is refused unless ``overwrite``, before anything is drawn.  ``progress``:
    a progress bar over the samples drawn.
    """
    from posesynth.body_model import load_body_model

    check_output(out, overwrite)
    check_grid(1, size, cols)
    body = load_body_model(body_model)
    samples = read_store_samples(path, indices, keypoint_set, camera_view, body, limit=max_grid_cells(size))
    check_grid(len(samples), size, cols)
    view = view or ("camera" if samples.cameras is not None else "front")
    return save_grid(samples, body, view, size, cols, backend, out, overwrite, progress)


def save_grid(samples: SampleSet, body: Any, view: str, size: int, cols: int | None, backend: str,
              out: str | Path, overwrite: bool, progress: bool) -> Path:
    """``render_cells`` of ``samples`` tiled into a grid with its legend, written as PNG ``out``."""
    images = render_cells(samples, body, view, size, backend, progress=progress)
    return save_png(make_grid(images, size, cols, samples.captions, legend_entries(samples, view)), out, overwrite)



def render_checkpoint(checkpoint: str | Path, out: str | Path, n: int = 16, label: str | None = None, seed: int = 0,
                      view: str | None = None, keypoint_set: str | None = "smpl24",
                      body_model: str | Path | None = None, size: int = 512, cols: int | None = None,
                      backend: str = "auto", recipe: str | Path | None = None, overwrite: bool = False,
                      progress: bool = False) -> Path:
    """``posesynth render --checkpoint C``: ``sample_checkpoint``, then a PNG grid (an existing
    ``out`` only with ``overwrite``; ``progress``: a progress bar over the samples drawn)."""
    from posesynth.body_model import load_body_model

    check_output(out, overwrite)
    check_grid(n, size, cols)
    body = load_body_model(body_model)
    samples = sample_checkpoint(checkpoint, n, label, seed, keypoint_set, body, recipe)
    return save_grid(samples, body, view or "camera", size, cols, backend, out, overwrite, progress)
