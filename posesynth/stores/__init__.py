"""The layout of each kind of posesynth store: one module per kind, owner of its array paths.

- ``samples``: what ``posesynth sample`` writes (docs/sample_store.md);
- ``training``: what ``posesynth prepare`` writes, and its reader (poses, splits, held-out files).

Each module gives every array's path, shape, dtype and axis names (``ArraySpec``), used by the
writer to create the arrays and by every reader to find them.  Creating, locking, opening and
writing Zarr stores of any kind is ``posesynth.store``; ``checked_arrays`` holds a store to its
layout's attribute types (``ATTRIBUTES``) and lists its arrays.
"""

from __future__ import annotations

import zarr

from posesynth.store import ATTR, check_attributes, store_arrays
from posesynth.stores import samples, training

LAYOUTS = {samples.KIND: samples, training.KIND: training}


def checked_arrays(group: zarr.Group) -> dict[str, zarr.Array]:
    """Every array of the store ``group`` (``store.store_arrays``), once its attributes are known
    to have the types its kind's layout gives (``ATTRIBUTES``): a "damaged store" StoreError
    names the first attribute, or array metadata, that is not as posesynth writes it."""
    layout = LAYOUTS.get(group.attrs[ATTR].get("kind"))
    if layout is not None:
        check_attributes(group, layout.ATTRIBUTES)
    return store_arrays(group)
