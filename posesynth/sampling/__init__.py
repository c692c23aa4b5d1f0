"""``posesynth sample``: poses -> bodies -> cameras -> paired 2D/3D keypoints -> a sample store.

One module per step:

- ``generate``: one block of rows from its own seeds (``BlockSampler``, ``block_seed``), and
  ``check_body_model`` (a source made with one body model is not sampled with another);
- ``layout``: the run's arrays (``array_shapes``, from the store's layout:
  ``posesynth.stores.samples``) and how rows split into blocks, chunks and shards (``Layout``;
  chunks and shards hold whole blocks);
- ``writer``: writing in this process (``write_local``: sampling threads, writer threads, reused
  shard buffers);
- ``cluster``: writing on a dask.distributed cluster (``write_dask``: one task per shard);
- ``resume``: the run's attributes in the store, creating or reopening it, ``shards_done``;
- ``run``: the entry point, ``sample_to_store``, which checks everything first (``checked_run``).

Determinism: every block draws from generators seeded from ``(seed, block)`` and is computed on
its own; the last block is computed whole and cut, so a store of ``n`` rows is the first ``n``
rows of a longer one, whatever the chunking, worker count or dask cluster.
"""

from posesynth.sampling.errors import SampleError
from posesynth.sampling.generate import BlockSampler, check_body_model
from posesynth.sampling.run import SampleSummary, checked_run, sample_to_store
from posesynth.stores.samples import KIND, VISIBLE_IN_FRAME, VISIBLE_NOT_OCCLUDED

__all__ = [
    "KIND", "VISIBLE_IN_FRAME", "VISIBLE_NOT_OCCLUDED", "BlockSampler", "SampleError", "SampleSummary",
    "check_body_model", "checked_run", "sample_to_store",
]
