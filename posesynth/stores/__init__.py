"""The layout of each kind of posesynth store: one module per kind, owner of its array paths.

- ``samples``: what ``posesynth sample`` writes (docs/sample_store.md);
- ``training``: what ``posesynth prepare`` writes, and its reader (poses, splits, held-out files).

Each module gives every array's path, shape, dtype and axis names (``ArraySpec``), used by the
writer to create the arrays and by every reader to find them.  Creating, locking, opening and
writing Zarr stores of any kind is ``posesynth.store``.
"""
