"""What the per-image formats (``humandata``, ``coco``) share: one row, one image, per sample view.

A sample store holds N samples, each seen by V cameras; these formats hold one image (and one
person in it) per row, so their ``M = N * V`` rows are the sample views, sample-major: row
``r = sample * V + view`` (the V views of sample 0, then those of sample 1, ...).  posesynth
renders no images: each row's image name is a placeholder named after its sample and view,
``image_name`` (``00000042_view1.png``), for a renderer or a loader that does not open images.

A keypoint is *labelled* in a view when it is in the image (bit 0 of ``keypoints/<set>/visible``,
docs/sample_store.md); a person's box (``keypoint_boxes``) is the box of its labelled 2D
keypoints, widened by ``BOX_SCALE`` about its centre (as MMHuman3D's converters make boxes from
keypoints) and clipped to the image.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import zarr

from posesynth.export import ExportError, ExportOptions
from posesynth.export.arrays import progress, row_blocks
from posesynth.store import ATTR
from posesynth.stores import samples
from posesynth.stores.arrays import read_array

BOX_SCALE = 1.2


def check_sample_store(group: zarr.Group, fmt: str) -> None:
    """ExportError unless ``group`` is a sample store (2D keypoints and cameras)."""
    kind = group.attrs[ATTR].get("kind")
    if kind != samples.KIND:
        raise ExportError(f"--format {fmt} needs a sample store (2D keypoints and cameras); this is a "
                          f"{kind} store: use --format npz or h5")


def keypoint_set(group: zarr.Group, name: str, option: str) -> list[str]:
    """The joint names of the store's keypoint set ``name``, or an ExportError naming the
    ``option`` that asks for it and the sets the store has."""
    sets = group.attrs["keypoint_sets"]
    if name not in sets:
        raise ExportError(f"{option}: the store has no {name} keypoints (it has {', '.join(sets)}); sample with "
                          f"sample.keypoint_sets including {name!r}")
    return list(sets[name]["joint_names"])


def pixels_array(group: zarr.Group, name: str, options: ExportOptions) -> str:
    """The store's 2D keypoints of set ``name``: clean, or noisy with ``options.noisy``
    (ExportError when the store has none)."""
    pixels = samples.keypoints_path(name, samples.NOISY if options.noisy else "pixels")
    if pixels not in group:
        raise ExportError(f"--noisy: the store has no noisy 2D ({pixels}); sample with sample.noise = true")
    return pixels


def image_name(sample: int, view: int) -> str:
    """The placeholder image name of a sample view (no image is written)."""
    return f"{sample:08d}_view{view}.png"


def rows(values: np.ndarray) -> np.ndarray:
    """Per-view store values (n, V, ...) as rows (n * V, ...), sample-major."""
    return values.reshape((-1,) + values.shape[2:])


def view_chunks(group: zarr.Group, names: list[str], desc: str) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """``(first sample, {name: that chunk's values})`` for each chunk of the store's arrays
    ``names``, in order, with a progress bar on a terminal."""
    blocks = row_blocks(group[names[0]])
    with progress(len(blocks), desc) as bar:
        for block in blocks:
            yield block.start, {name: read_array(group[name], block) for name in names}
            bar.update()


def keypoint_boxes(pixels: np.ndarray, labelled: np.ndarray, image_size: np.ndarray) -> np.ndarray:
    """Boxes ``[x, y, w, h]`` (M, 4) float32 around the labelled keypoints of each row, from 2D
    keypoints (M, J, 2), labelled (M, J) bool and image sizes (M, 2) (width, height): the
    keypoints' box scaled by ``BOX_SCALE`` about its centre, clipped to ``[0, W] x [0, H]``;
    zeros for a row without labelled keypoints."""
    has = labelled.any(1)[:, None]
    lo = np.where(has, np.where(labelled[..., None], pixels, np.inf).min(1), 0.0)
    hi = np.where(has, np.where(labelled[..., None], pixels, -np.inf).max(1), 0.0)
    centre, half = (lo + hi) / 2, (hi - lo) / 2 * BOX_SCALE
    first = np.clip(centre - half, 0, image_size)
    last = np.clip(centre + half, 0, image_size)
    return np.concatenate([first, last - first], axis=1).astype(np.float32)
