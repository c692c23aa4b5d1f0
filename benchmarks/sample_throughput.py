"""Throughput of `posesynth sample`: generation alone, writing alone, end to end, and peak memory.

    python benchmarks/sample_throughput.py --n 1000000 4000000

For each N, with the default checkpoint (``posesynth/assets/checkpoints/default.pt``, or ``--source``: any
checkpoint or training store) and the default recipe, on ``--device`` (default: auto):

- ``gen_only_s``: the sampling pipeline over N rows (poses, bodies, cameras, keypoints,
  visibility, noise, into shard buffers) with the same threads as ``sample``, no store;
- ``write_only_s``: writing N rows of the same arrays, from memory (the first shard's data,
  written to every shard), to a store with the same layout and writer threads;
- ``end_to_end_s``: ``posesynth sample`` in a subprocess, as the command reports it (from loading
  the source to marking the store complete; ``end_to_end_wall_s`` adds the interpreter start);
- ``peak_rss_mb``: that subprocess's peak resident memory (``VmHWM``, Linux).

Each store is deleted and the page cache flushed (``sync``) before the next stage starts.

One JSON line per N.  Targets on 2 CPU cores: end_to_end_s <= 1.2 x max(gen_only_s,
write_only_s), and peak_rss_mb for 4M within 10 % of 1M.  Without a default checkpoint the
benchmark says so and replays real poses from a training store it prepares from the mocap pool
(``../shared/data/mocap``, else the test fixtures).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import zarr

from posesynth.body_model import load_body_model
from posesynth.devices import resolve_device
from posesynth.gan.checkpoint import DEFAULT_CHECKPOINT
from posesynth.pose_sources import load_pose_source
from posesynth.prepare import PrepareOptions, prepare
from posesynth.sample_recipe import DEFAULT_SAMPLE_RECIPE, resolve_sample_recipe
from posesynth.sampling.generate import BlockSampler
from posesynth.sampling.layout import Layout, array_shapes
from posesynth.sampling.writer import ShardWriter, default_workers, generate_shard, new_buffer, single_torch_thread
from posesynth.store import create_array, create_store
from posesynth.stores.samples import KIND, LABEL_PATH, dimension_names

ROOT = Path(__file__).resolve().parents[1]
POOL = ROOT.parent / "shared" / "data" / "mocap"


def fallback_source(tmp: Path) -> Path:
    data = POOL if POOL.is_dir() else ROOT / "tests" / "fixtures"
    print(f"note: no checkpoint at {DEFAULT_CHECKPOINT}; replaying real poses from a training store "
          f"prepared from {data}", file=sys.stderr)
    out = tmp / "train.zarr"
    prepare([data], out, PrepareOptions(workers=2), progress=False)
    return out


def gen_only(sampler: BlockSampler, layout: Layout, shapes, workers: int) -> float:
    buffer = new_buffer(shapes, layout)
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool, single_torch_thread():
        for shard in range(layout.num_shards):
            generate_shard(sampler, layout, shard, buffer, pool)
    return time.perf_counter() - start


def write_only(sampler: BlockSampler, layout: Layout, shapes, out: Path) -> float:
    """The first shard's rows written to every shard of an N-row store (same layout, same writers)."""
    first = new_buffer(shapes, layout)
    generate_shard(sampler, layout, 0, first)
    start = time.perf_counter()
    group = create_store(out, KIND, {}, overwrite=True)
    arrays = {name: create_array(group, name, (layout.n,) + tail, dtype, layout.chunk, layout.shard,
                                 dims=dimension_names(name))
              for name, (tail, dtype) in shapes.items()}
    writer = ShardWriter(arrays, layout, shapes, on_written=lambda shard: None)
    try:
        for shard in range(layout.num_shards):
            buffer = writer.buffer()
            for name in shapes:
                buffer[name][...] = first[name]
            writer.submit(shard, buffer)
    finally:
        writer.close()
    seconds = time.perf_counter() - start
    assert zarr.open_group(str(out), mode="r")[LABEL_PATH].shape == (layout.n,)
    quiet_disk(out)
    return seconds


def quiet_disk(store: Path) -> None:
    """Delete ``store`` and flush the page cache to disk, so that the kernel writing one stage's
    gigabytes back does not take CPU from the next stage's measurement."""
    shutil.rmtree(store)
    os.sync()


def end_to_end(source: Path, n: int, out: Path, recipe: Path, device: str) -> dict[str, float]:
    """`posesynth sample` in a subprocess: its reported time, wall time and peak RSS.

    The peak is the child's own ``VmHWM``, polled: its ``ru_maxrss`` would count this (large)
    process, which the child is a copy of until it execs."""
    cmd = [sys.executable, "-m", "posesynth.cli", "sample", "--n", str(n), "--out", str(out), "--checkpoint",
           str(source), "--recipe", str(recipe), "--device", device, "--overwrite"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    peak_kb = 0
    while proc.poll() is None:
        peak_kb = max(peak_kb, _vm_hwm_kb(proc.pid))
        time.sleep(0.02)
    wall = time.perf_counter() - start
    output = proc.stdout.read()
    if proc.returncode:
        raise SystemExit(f"posesynth sample failed ({proc.returncode}): {output}")
    seconds = float(re.search(r" in ([0-9.]+) s", output).group(1))
    return {"end_to_end_s": seconds, "end_to_end_wall_s": round(wall, 2), "peak_rss_mb": round(peak_kb / 1024, 1)}


def _vm_hwm_kb(pid: int) -> int:
    """Peak resident memory (kB) of a running process, from /proc (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next((int(line.split()[1]) for line in fh if line.startswith("VmHWM:")), 0)
    except OSError:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[100_000], help="sample counts (documented: 1000000 4000000)")
    parser.add_argument("--source", type=Path, help="checkpoint or training store (default: the default checkpoint)")
    parser.add_argument("--recipe", type=Path, default=DEFAULT_SAMPLE_RECIPE)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tmp", type=Path, help="where to write the stores (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        tmp = Path(tmp)
        source = args.source or (DEFAULT_CHECKPOINT if DEFAULT_CHECKPOINT.is_file() else fallback_source(tmp))
        recipe = resolve_sample_recipe(args.recipe)
        device = resolve_device(args.device)
        body = load_body_model()
        sampler = BlockSampler(load_pose_source(source), recipe, 0, body, device)
        shapes = array_shapes(recipe, body.num_betas)
        workers = default_workers(device)
        os.sync()
        for n in args.n:
            layout = Layout.of(recipe, n)
            row = {"n": n, "source": source.name, "device": str(device), "workers": workers,
                   "gen_only_s": round(gen_only(sampler, layout, shapes, workers), 2),
                   "write_only_s": round(write_only(sampler, layout, shapes, tmp / "write_only.zarr"), 2)}
            row.update(end_to_end(source, n, tmp / "sample.zarr", args.recipe, str(device)))
            row["bytes_per_sample"] = round(sum(_size(tmp / "sample.zarr")) / n, 1)
            quiet_disk(tmp / "sample.zarr")
            row["ratio"] = round(row["end_to_end_s"] / max(row["gen_only_s"], row["write_only_s"]), 3)
            print(json.dumps(row), flush=True)


def _size(path: Path):
    return (f.stat().st_size for f in path.rglob("*") if f.is_file())


if __name__ == "__main__":
    main()
