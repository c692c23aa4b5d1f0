"""Drawing 2D keypoints and their skeleton edges onto an image, antialiased."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from posesynth.errors import require_extra
from posesynth.keypoint_sets import KEYPOINT_SETS
from posesynth.render.camera import scale_pixels
from posesynth.render.style import CLEAN_COLOR, Marker, marker_size


def keypoint_edges(set_name: str, store_sets: dict[str, Any] | None = None) -> list[tuple[int, int]]:
    """Skeleton edges (pairs of keypoint indices) of a keypoint set, for drawing.

    From ``posesynth.keypoint_sets.KEYPOINT_SETS`` when it knows the set, else from the edges or
    parents written in a store's ``keypoint_sets`` attribute (``store_sets``).
    """
    if set_name in KEYPOINT_SETS:
        return [(int(a), int(b)) for a, b in KEYPOINT_SETS[set_name].edges]
    info = (store_sets or {}).get(set_name, {})
    if info.get("edges"):
        return [(int(a), int(b)) for a, b in info["edges"]]
    return [(int(p), j) for j, p in enumerate(info.get("parents") or ()) if p is not None and p >= 0]


def draw_keypoints(image: np.ndarray, pixels: np.ndarray, edges: Sequence[tuple[int, int]] = (),
                   visible: np.ndarray | None = None, color: Sequence[int] = CLEAN_COLOR,
                   radius: float = 3.0, width: float = 2.0, supersample: int = 4) -> np.ndarray:
    """Draw 2D keypoints (J, 2) (pixel-centre convention) and skeleton ``edges`` onto ``image``.

    Points are discs; keypoints with ``visible`` != 3 (not in frame or self-occluded) are
    hollow rings.  An edge is drawn when both its ends are finite.  Drawn antialiased on a
    ``supersample``-times larger layer, box-filtered down and composited; returns a new
    (H, W, 3) uint8 image (RGBA input keeps its alpha).
    """
    require_extra("render", "drawing keypoints", "PIL")
    from PIL import Image, ImageDraw

    img = np.asarray(image)
    H, W = img.shape[:2]
    ss = int(supersample)
    layer = Image.new("RGBA", (W * ss, H * ss), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    p = scale_pixels(np.asarray(pixels, dtype=np.float64), ss, ss)  # centres in the big layer
    finite = np.isfinite(p).all(-1)
    rgba = tuple(int(x) for x in color) + (255,)
    lw = max(1, round(width * ss))
    for a, b in edges:
        if finite[a] and finite[b]:
            draw.line([tuple(p[a]), tuple(p[b])], fill=rgba, width=lw)
    R = radius * ss
    for j in np.flatnonzero(finite):
        box = [p[j, 0] - R, p[j, 1] - R, p[j, 0] + R, p[j, 1] + R]
        if visible is None or int(visible[j]) == 3:
            draw.ellipse(box, fill=rgba, outline=(255, 255, 255, 255), width=max(1, ss // 2))
        else:
            draw.ellipse(box, fill=None, outline=rgba, width=max(1, round(0.45 * R)))
    small = np.asarray(layer.resize((W, H), Image.Resampling.BOX), dtype=np.float64)
    a = small[..., 3:] / 255.0
    # Pillow resizes RGBA with premultiplied alpha and returns straight alpha: composite "over".
    out = img[..., :3].astype(np.float64) * (1 - a) + small[..., :3] * a
    result = out.round().clip(0, 255).astype(np.uint8)
    if img.shape[-1] == 4:
        result = np.concatenate([result, img[..., 3:]], axis=-1)
    return result


def draw_marker(image: np.ndarray, pixels: np.ndarray, edges: Sequence[tuple[int, int]], visible: np.ndarray | None,
                marker: Marker, cell: int) -> np.ndarray:
    """``draw_keypoints`` of pixels (J, 2) (``visible`` (J,)) in ``marker``'s style at the size of a
    ``cell``-pixel cell; returns a new (H, W, 3) uint8 image."""
    radius, width = marker_size(cell)
    return draw_keypoints(image, pixels, edges, visible, marker.color, radius * marker.radius, width * marker.width)
