"""A run's arrays (``array_shapes``) and how its rows split into blocks, chunks and shards (``Layout``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from posesynth.keypoint_sets import keypoint_sets
from posesynth.sample_recipe import SampleRecipe
from posesynth.stores import samples
from posesynth.stores.arrays import Shapes


def array_shapes(recipe: SampleRecipe, num_betas: int) -> Shapes:
    """Every array of the store the sampling ``recipe`` makes with a body of ``num_betas``
    betas: path -> (shape after the sample axis, dtype) (``posesynth.stores.samples``)."""
    sets = {s.name: len(s) for s in keypoint_sets(recipe.sample.keypoint_sets)}
    return samples.array_shapes(recipe.camera.views, num_betas, sets, recipe.sample.noise)


@dataclass(frozen=True)
class Layout:
    """How ``n`` rows split into blocks, chunks and shards (shards hold whole blocks)."""

    n: int
    block: int
    chunk: int
    shard: int

    @property
    def num_shards(self) -> int:
        return math.ceil(self.n / self.shard)

    def rows(self, shard: int) -> tuple[int, int]:
        """First and past-the-end row of ``shard``."""
        return shard * self.shard, min(self.n, (shard + 1) * self.shard)

    def blocks(self, shard: int) -> range:
        start, stop = self.rows(shard)
        return range(start // self.block, math.ceil(stop / self.block))

    @classmethod
    def of(cls, recipe: SampleRecipe, n: int) -> Layout:
        s = recipe.sample
        return cls(n, s.block_size, s.chunk_size, s.shard_size)
