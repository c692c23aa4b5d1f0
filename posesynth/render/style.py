"""How pictures look: the background, the mesh palette, and the colours and sizes of 2D keypoint markers."""

from __future__ import annotations

from dataclasses import dataclass

BACKGROUND = (0.93, 0.93, 0.92)
#: Mesh colours, one per sample (by label when the sample has one, else by position).
PALETTE = (
    (0.86, 0.76, 0.66),  # sand
    (0.70, 0.80, 0.68),  # sage
    (0.84, 0.72, 0.84),  # mauve
    (0.78, 0.78, 0.80),  # grey
    (0.90, 0.84, 0.60),  # straw
    (0.66, 0.80, 0.80),  # teal grey
    (0.88, 0.70, 0.70),  # rose
    (0.76, 0.72, 0.62),  # khaki
)
CLEAN_COLOR = (0, 110, 255)  # clean 2D keypoints and skeleton
NOISY_COLOR = (235, 40, 40)  # detector-like noisy 2D
OUTSIDE_COLOR = (212, 212, 212)  # the part of a cell outside its camera's image


@dataclass(frozen=True)
class Marker:
    """How one kind of 2D keypoint is drawn: its colour, and its radius and line width as
    multiples of a cell's (``marker_size``)."""

    color: tuple[int, int, int]
    radius: float = 1.0
    width: float = 1.0


CLEAN = Marker(CLEAN_COLOR)
NOISY = Marker(NOISY_COLOR, radius=0.7, width=0.6)


def marker_size(cell: int) -> tuple[float, float]:
    """Keypoint radius and skeleton line width (pixels) in a cell of ``cell`` pixels."""
    return max(2.0, cell / 160), max(1.0, cell / 320)
