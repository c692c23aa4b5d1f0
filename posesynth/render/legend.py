"""A grid's legend: which marker means what, drawn as a strip below the cells."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from posesynth.errors import require_extra
from posesynth.render.draw import draw_marker
from posesynth.render.style import CLEAN, OUTSIDE_COLOR, Marker, marker_size


@dataclass(frozen=True)
class LegendEntry:
    """One entry of a grid's legend: a symbol, then ``text``.  ``kind``: ``"bone"`` (two
    keypoints and their edge, in ``marker``'s style), ``"ring"`` (a keypoint not visible) or
    ``"outside"`` (a swatch of ``OUTSIDE_COLOR``)."""

    text: str
    kind: str
    marker: Marker = CLEAN


def grid_font(cell: int) -> Any:
    """The font of a grid's captions and legend."""
    require_extra("render", "drawing a grid", "PIL")
    from PIL import ImageFont

    return ImageFont.load_default(size=max(10, cell // 28))


def _wrap(text: str, font: Any, width: float) -> list[str]:
    """``text`` broken at spaces into lines of at most ``width`` pixels (a longer word alone)."""
    lines = [""]
    for word in text.split():
        longer = f"{lines[-1]} {word}".strip()
        if lines[-1] and font.getlength(longer) > width:
            lines.append(word)
        else:
            lines[-1] = longer
    return lines


def legend_strip(entries: Sequence[LegendEntry], width: int, cell: int) -> np.ndarray:
    """A white strip (h, ``width``, 3) uint8 showing ``entries`` left to right, moved onto more
    rows where they do not fit (a text too long for a row wrapped), at the sizes of a grid of
    ``cell``-pixel cells."""
    require_extra("render", "drawing a legend", "PIL")
    from PIL import Image, ImageDraw

    font = grid_font(cell)
    size = int(font.size)
    symbol, gap, row, line_step = 3 * size, size, 2 * size, round(1.3 * size)
    indent = symbol + size // 2  # from an entry's symbol to its text
    x, y, tallest, places = gap, 0, row, []
    for e in entries:
        lines = _wrap(e.text, font, width - 2 * gap - indent)
        w = indent + int(max(font.getlength(line) for line in lines))
        if x > gap and x + w > width - gap:
            x, y, tallest = gap, y + tallest, row
        places.append((x, y + row / 2, lines))
        x, tallest = x + w + 2 * gap, max(tallest, row + (len(lines) - 1) * line_step)
    strip = Image.new("RGB", (width, y + tallest), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    for e, (x, y, lines) in zip(entries, places):
        for k, line in enumerate(lines):
            draw.text((x + indent, y + k * line_step), line, fill=(40, 40, 40), font=font, anchor="lm")
        if e.kind == "outside":
            draw.rectangle([x, y - size / 2, x + symbol, y + size / 2], fill=OUTSIDE_COLOR, outline=(150, 150, 150))
    image = np.asarray(strip)
    for e, (x, y, _) in zip(entries, places):
        r = marker_size(cell)[0] * e.marker.radius
        if e.kind == "bone":
            image = draw_marker(image, np.array([[x + r, y], [x + symbol - r, y]]), [(0, 1)], None, e.marker, cell)
        elif e.kind == "ring":
            image = draw_marker(image, np.array([[x + symbol / 2, y]]), [], np.zeros(1), e.marker, cell)
    return image
