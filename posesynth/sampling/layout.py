"""The arrays of a sample store and how its rows split into blocks, chunks and shards."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from posesynth.keypoint_sets import keypoint_sets

Shapes = dict[str, tuple[tuple[int, ...], str]]  # array name -> (shape after the sample axis, dtype)


def array_shapes(recipe: dict[str, Any], num_betas: int) -> Shapes:
    """Every array of the store: name -> (shape after the sample axis, dtype); see docs/sample_store.md."""
    V = recipe["camera"]["views"]
    shapes: Shapes = {
        "smpl/global_orient": ((3,), "float32"),
        "smpl/body_pose": ((69,), "float32"),
        "smpl/betas": ((num_betas,), "float32"),
        "smpl/transl": ((3,), "float32"),
        "label": ((), "int32"),
        "camera/K": ((V, 3, 3), "float32"),
        "camera/R": ((V, 3, 3), "float32"),
        "camera/t": ((V, 3), "float32"),
        "camera/distortion": ((V, 4), "float32"),
        "camera/image_size": ((V, 2), "int32"),
    }
    for s in keypoint_sets(recipe["sample"]["keypoint_sets"]):
        J = len(s)
        shapes[f"keypoints/{s.name}/world"] = ((J, 3), "float32")
        shapes[f"keypoints/{s.name}/camera"] = ((V, J, 3), "float32")
        shapes[f"keypoints/{s.name}/pixels"] = ((V, J, 2), "float32")
        shapes[f"keypoints/{s.name}/visible"] = ((V, J), "uint8")
        if recipe["sample"]["noise"]:
            shapes[f"keypoints/{s.name}/pixels_noisy"] = ((V, J, 2), "float32")
    return shapes


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
    def of(cls, recipe: dict[str, Any], n: int) -> Layout:
        s = recipe["sample"]
        return cls(n, s["block_size"], s["chunk_size"], s["shard_size"])
