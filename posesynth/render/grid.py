"""Tiling cell images into one grid picture, its size limits, and writing it as PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from posesynth.errors import require_extra
from posesynth.outputs import atomic_output
from posesynth.render.errors import RenderError
from posesynth.render.legend import LegendEntry, grid_font, legend_strip

GRID_GAP = 4  # pixels between cells
MAX_GRID_PIXELS = 100_000_000  # a 10,000 x 10,000 picture, 300 MB in memory
# The most cells (samples) one grid draws, however small: every cell's samples, posed mesh and
# picture are held in memory until the grid is made, 150-250 KB a cell (measured: 1,000 cells of
# 1 px peak at 0.6 GB; 20,000 took about 5 GB), so a grid stays under about 2.5 GB.
MAX_GRID_CELLS = 10_000


def grid_shape(n: int, cell: int, cols: int | None = None) -> tuple[int, int, int, int]:
    """Columns, rows, width and height (pixels) of a grid of ``n`` cells of ``cell`` pixels."""
    cols = min(n, int(cols)) if cols else int(np.ceil(np.sqrt(n)))
    rows = -(-n // cols)
    step = cell + GRID_GAP
    return cols, rows, cols * step - GRID_GAP, rows * step - GRID_GAP


def max_grid_cells(cell: int) -> int:
    """About the most cells of ``cell`` pixels a grid holds: ``MAX_GRID_CELLS``, or fewer where
    they would make a picture of more than ``MAX_GRID_PIXELS``."""
    return max(1, min(MAX_GRID_CELLS, MAX_GRID_PIXELS // (max(1, cell) + GRID_GAP) ** 2))


def check_grid(n: int, cell: int, cols: int | None = None) -> None:
    """RenderError, before anything is drawn, for a cell size, column count or picture size
    that cannot be made."""
    if isinstance(cell, bool) or not isinstance(cell, int) or cell < 1:
        raise RenderError(f"--size must be a cell size of at least 1 pixel, got {cell!r}")
    if cols is not None and cols < 1:
        raise RenderError(f"--cols must be at least 1, got {cols}")
    if n > MAX_GRID_CELLS:
        raise RenderError(f"{n:,} samples asked; one grid draws at most {MAX_GRID_CELLS:,} (each is held in memory "
                          "until the grid is made): draw fewer samples (--index, --n)")
    c, r, w, h = grid_shape(n, cell, cols)
    if w * h > MAX_GRID_PIXELS:
        samples, make = ("1 sample", "makes") if n == 1 else (f"{n:,} samples", "make")
        raise RenderError(f"{samples} in a {c} x {r} grid of {cell} px cells {make} a {w:,} x {h:,} picture "
                          f"({w * h / 1e6:,.0f} megapixels, over the {MAX_GRID_PIXELS / 1e6:.0f} megapixel limit); "
                          "draw fewer samples (--index, --n) or smaller cells (--size)")


def make_grid(images: Sequence[np.ndarray], cell: int, cols: int | None = None,
              captions: Sequence[str] | None = None, legend: Sequence[LegendEntry] = ()) -> np.ndarray:
    """Tile RGB images (each at most ``cell`` x ``cell``, centred in its cell) into one (H, W, 3)
    uint8 grid, with the ``legend`` (``legend_strip``) below the cells when there is one."""
    require_extra("render", "drawing a grid", "PIL")
    from PIL import Image, ImageDraw

    check_grid(len(images), cell, cols)
    cols, _, width, height = grid_shape(len(images), cell, cols)
    step = cell + GRID_GAP
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    pad = (250, 250, 250)  # a cell's margin around a smaller image
    font = grid_font(cell)
    for k, im in enumerate(images):
        r, c = divmod(k, cols)
        tile = Image.new("RGB", (cell, cell), pad)
        pic = Image.fromarray(np.asarray(im)[..., :3])
        if max(pic.size) > cell:
            pic.thumbnail((cell, cell), Image.Resampling.LANCZOS)
        tile.paste(pic, ((cell - pic.width) // 2, (cell - pic.height) // 2))
        if captions:
            ImageDraw.Draw(tile).text((6, 4), captions[k], fill=(40, 40, 40), font=font)
        canvas.paste(tile, (c * step, r * step))
    grid = np.asarray(canvas)
    return np.concatenate([grid, legend_strip(legend, width, cell)]) if legend else grid


def save_png(image: np.ndarray, out: str | Path, overwrite: bool = True) -> Path:
    """Write an (H, W, 3|4) uint8 image as PNG, making its folder; atomically, and over an
    existing file only with ``overwrite`` (``posesynth.outputs``)."""
    require_extra("render", "writing a PNG", "PIL")
    from PIL import Image

    out = Path(out)
    with atomic_output(out, overwrite) as tmp:
        Image.fromarray(np.asarray(image)).save(tmp, format="PNG")
    return out
