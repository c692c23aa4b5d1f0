"""Resuming ``posesynth adapt``: a state file beside the output, ``<out>.state``.

It holds the run's key (the sha256 of the source checkpoint's digest, the target's record, the
recipe, the seed and the training state used), the global alignment (so a resumed run does not
search again) and, once fine-tuning has begun, the fine-tuner's state every ``finetune.state_every`` steps (weights,
optimisers, random state: a resumed run ends with the weights an uninterrupted one does).  It is
written atomically, read with ``weights_only=True``, and removed when the checkpoint is written.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from posesynth.adapt.alignment import Alignment, AlignmentFit
from posesynth.adapt.errors import AdaptError
from posesynth.outputs import atomic_output
from posesynth.torch_files import load_tensors_file

FORMAT = "posesynth-adapt-state"


def state_path(out: Path) -> Path:
    return out.with_name(out.name + ".state")


def run_key(source_sha256: str, target: dict, recipe: dict, seed: Any) -> str:
    """What a state file must have been made by to be resumed."""
    text = json.dumps([source_sha256, target, recipe, seed], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def read_state(path: Path, key: str, resume: bool) -> dict[str, Any] | None:
    """The state at ``path`` when resuming (None when there is none); AdaptError when there is one
    and ``resume`` is not asked, or when it was made by another run."""
    if not path.exists():
        return None
    if not resume:
        raise AdaptError(f"{path}: an interrupted adaptation's state; pass --resume to finish it, or delete it")
    state = load_tensors_file(path, AdaptError, "adaptation state (delete it to start over)")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise AdaptError(f"{path}: not a posesynth adaptation state")
    if state["key"] != key:
        raise AdaptError(f"{path}: the state of another run (checkpoint, target, recipe or seed differ); "
                         "run that again, or delete it")
    return state


def saved_fit(state: dict[str, Any]) -> AlignmentFit:
    a = state["alignment"]
    return AlignmentFit(Alignment.from_dict(a["fitted"]), a["before"], a["after"], tuple(a["history"]))


def write_state(path: Path, key: str, fit: AlignmentFit, tuner: dict[str, Any] | None) -> None:
    """The run's state: its key, the alignment and the fine-tuner's ``state_dict`` (or None)."""
    alignment = {"fitted": fit.alignment.to_dict(), "before": fit.before, "after": fit.after,
                 "history": list(fit.history)}
    with atomic_output(path) as tmp:
        torch.save({"format": FORMAT, "key": key, "alignment": alignment, "tuner": tuner}, tmp)
