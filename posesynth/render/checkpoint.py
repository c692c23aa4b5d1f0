"""Samples to draw computed from a checkpoint, as ``posesynth sample`` would write them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from posesynth.render.errors import RenderError
from posesynth.render.samples import SampleSet, add_views, labelled
from posesynth.stores.samples import LABEL_PATH, SMPL_PARAMS, smpl_path


def sample_checkpoint(checkpoint: str | Path, n: int = 16, label: str | None = None, seed: int = 0,
                      keypoint_set: str | None = "smpl24", body: Any = None,
                      recipe: str | Path | None = None) -> SampleSet:
    """The first ``n`` samples that ``posesynth sample --checkpoint C --seed S [--recipe R]`` would
    write, computed in memory with the sampling pipeline (``posesynth.sampling.BlockSampler``).

    ``checkpoint``: a GAN checkpoint (or a training store, replayed); ``label`` conditions on one
    of its labels; ``recipe``: a sampling recipe (default: ``posesynth/recipes/sample_default.toml``), to
    which ``keypoint_set`` is added if it lacks it; an adapted checkpoint's cameras are its own
    unless the recipe names a preset, as in ``sample``.  Whole blocks of the recipe's ``block_size``
    rows are computed (4096 by default, under a second on a CPU) and cut to ``n``.
    """
    from posesynth.body_model import load_body_model
    from posesynth.gan.checkpoint import adapted_sampling
    from posesynth.pose_sources import load_pose_source
    from posesynth.sample_recipe import resolve_sample_recipe
    from posesynth.sampling import BlockSampler, SampleError, check_body_model

    if n < 1:
        raise RenderError(f"--n must be at least 1, got {n}")
    body = body if body is not None else load_body_model()
    try:
        source = load_pose_source(checkpoint)
        adapted = adapted_sampling(source)
        rec = resolve_sample_recipe(recipe, adapted=adapted)
        overrides = []
        if label is not None:
            overrides.append(f"sample.label={json.dumps(label)}")
        sets = rec.sample.keypoint_sets
        if keypoint_set and keypoint_set not in sets:
            overrides.append(f"sample.keypoint_sets={json.dumps(sets + [keypoint_set])}")
        if overrides:
            rec = resolve_sample_recipe(recipe, overrides, adapted)
        check_body_model(source, body)
        sampler = BlockSampler(source, rec, int(seed), body)
        blocks = [sampler.block(b) for b in range(-(-n // sampler.size))]
    except (SampleError, ValueError) as exc:  # RecipeError and CheckpointError are ValueErrors
        raise RenderError(str(exc)) from None
    arrays = {k: np.concatenate([blk[k] for blk in blocks])[:n] for k in blocks[0]}
    codes = arrays[LABEL_PATH].astype(np.int64)
    smpl = {k: arrays[smpl_path(k)].astype(np.float32) for k in SMPL_PARAMS}
    out = SampleSet(**smpl, **labelled(np.arange(n), codes, source.label_names))
    add_views(out, arrays, keypoint_set, 0, None, str(checkpoint))
    return out
