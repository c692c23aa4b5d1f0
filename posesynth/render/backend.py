"""Choosing a renderer: GL when a context can be made, else matplotlib with a one-time notice;
renderers cached per mesh topology."""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

from posesynth.render.errors import RenderError
from posesynth.render.gl import GLRenderer, gl_available
from posesynth.render.mpl import MatplotlibRenderer

_NOTICE_SHOWN = False
_RENDERERS: dict[tuple[str, int, bytes, int], Any] = {}


def _notice(reason: str) -> None:
    """Say once per process, on stderr, that the matplotlib fallback is used and why."""
    global _NOTICE_SHOWN
    if not _NOTICE_SHOWN:
        print(f"posesynth render: no GL context, using the matplotlib fallback renderer "
              f"(painter's algorithm, much slower): {reason}", file=sys.stderr)
        _NOTICE_SHOWN = True


def get_renderer(faces: np.ndarray, num_vertices: int, backend: str = "auto", samples: int = 4) -> Any:
    """A renderer for one mesh topology (``faces`` (F, 3) into ``num_vertices`` V): ``"gl"``,
    ``"matplotlib"`` or ``"auto"``.

    ``auto`` (overridden by the environment variable ``POSESYNTH_RENDERER``) is GL when a
    context can be made and otherwise matplotlib, with a one-time notice on stderr saying why.
    ``gl`` raises ``RenderError`` when there is no context.  Renderers are cached per
    (backend, topology, samples).
    """
    if backend == "auto":
        backend = os.environ.get("POSESYNTH_RENDERER", "auto") or "auto"
    if backend not in ("auto", "gl", "matplotlib"):
        raise ValueError(f"unknown renderer {backend!r} (auto, gl or matplotlib)")
    if backend in ("auto", "gl"):
        ok, why = gl_available()
        if ok:
            backend = "gl"
        elif backend == "gl":
            raise RenderError(why)
        else:
            _notice(why)
            backend = "matplotlib"
    faces = np.ascontiguousarray(faces, dtype=np.int32)
    key = (backend, int(num_vertices), faces.tobytes(), int(samples) if backend == "gl" else 0)
    if key not in _RENDERERS:
        cls = GLRenderer if backend == "gl" else MatplotlibRenderer
        if len(_RENDERERS) >= 4:
            old = _RENDERERS.pop(next(iter(_RENDERERS)))
            if hasattr(old, "release"):
                old.release()
        _RENDERERS[key] = cls(faces, num_vertices, samples=samples)
    return _RENDERERS[key]
