"""posesynth.shard_file writes the same shard files Zarr does, and falls back to Zarr otherwise.

The byte-identity test runs on whatever Zarr is installed: through the one-pass writer on a Zarr
it was checked against, through Zarr itself (asserted) on any other.
"""

import contextlib
from pathlib import Path

import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

from posesynth import shard_file
from posesynth.shard_file import ShardLayout, write_rows, zarr_checked
from posesynth.store import create_array, create_store

CHUNK, SHARD = 4, 12
needs_checked_zarr = pytest.mark.skipif(not zarr_checked(), reason=f"zarr {zarr.__version__} is not one shard_file "
                                        "was checked against: every write goes through zarr")


def _arrays(tmp_path: Path, n: int, tail: tuple[int, ...], dtype: str, zarr_format: int = 3):
    """The same array twice: one for Zarr's writer, one for ``write_rows``."""
    group = create_store(tmp_path / "s.zarr", "samples", {}, zarr_format=zarr_format)
    return tuple(create_array(group, name, (n,) + tail, dtype, CHUNK, SHARD) for name in ("by_zarr", "by_us"))


def _files(arr: zarr.Array) -> dict[str, bytes]:
    root = Path(arr.store_path.store.root) / arr.path
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
            and p.name != "zarr.json"}


@contextlib.contextmanager
def _zarr_writes_refused():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(zarr.Array, "__setitem__", lambda *args: pytest.fail("written through Zarr"))
        yield


@contextlib.contextmanager
def _one_pass_writes_refused():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(shard_file, "encode_shard", lambda *args: pytest.fail("written by the one-pass writer"))
        yield


def _expected_path():
    """The one-pass writer on a Zarr it was checked against, Zarr's own writer on any other."""
    return _zarr_writes_refused() if zarr_checked() else _one_pass_writes_refused()


def _rows(rng: np.random.Generator, n: int, tail: tuple[int, ...], dtype: str) -> np.ndarray:
    # no chunk equal to the fill value: Zarr leaves those out of the shard, write_rows does not
    return (rng.normal(size=(n,) + tail) * 100 + 1000).astype(dtype)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 40), tail=st.sampled_from([(), (3,), (2, 3)]),
       dtype=st.sampled_from(["float32", "int32", "uint8"]), seed=st.integers(0, 2**31))
def test_shard_files_are_byte_identical_to_zarrs(tmp_path_factory, n, tail, dtype, seed):
    by_zarr, by_us = _arrays(tmp_path_factory.mktemp("s"), n, tail, dtype)
    data = _rows(np.random.default_rng(seed), n, tail, dtype)
    for start in range(0, n, SHARD):
        by_zarr[start:start + SHARD] = data[start:start + SHARD]
        with _expected_path():
            write_rows(by_us, start, data[start:start + SHARD])
    assert _files(by_us) == _files(by_zarr)
    np.testing.assert_array_equal(by_us[:], data)


@needs_checked_zarr
def test_layout_is_recognised_only_for_sharded_v3_arrays(tmp_path):
    by_zarr, _ = _arrays(tmp_path, 24, (3,), "float32")
    assert ShardLayout.of(by_zarr).shard_rows == SHARD and ShardLayout.of(by_zarr).chunk_rows == CHUNK
    v2, _ = _arrays(tmp_path / "v2", 24, (3,), "float32", zarr_format=2)
    assert ShardLayout.of(v2) is None
    unsharded = create_array(zarr.open_group(str(tmp_path / "s.zarr"), mode="r+"), "plain", (24, 3), "float32", CHUNK)
    assert ShardLayout.of(unsharded) is None


@pytest.mark.parametrize("start, rows", [(0, 5), (4, 12), (12, 12)])
def test_other_ranges_go_through_zarr(tmp_path, start, rows):
    """Part of a shard, a range across shards and the v2 format are written by Zarr itself."""
    _, arr = _arrays(tmp_path, 30, (2,), "float32")
    data = _rows(np.random.default_rng(0), rows, (2,), "float32")
    write_rows(arr, start, data)
    np.testing.assert_array_equal(arr[start:start + rows], data)
    v2, _ = _arrays(tmp_path / "v2", 30, (2,), "float32", zarr_format=2)
    write_rows(v2, start, data)
    np.testing.assert_array_equal(v2[start:start + rows], data)


def test_no_partial_file_is_left_behind(tmp_path):
    _, arr = _arrays(tmp_path, 24, (), "int32")
    write_rows(arr, 12, np.arange(12, dtype="int32") + 1)
    root = Path(arr.store_path.store.root) / arr.path
    assert not list(root.rglob("*.partial"))
    np.testing.assert_array_equal(arr[12:], np.arange(12) + 1)
    np.testing.assert_array_equal(arr[:12], 0)


def test_a_failed_write_leaves_neither_a_shard_nor_a_partial_file(tmp_path, monkeypatch):
    import errno
    import os

    _, arr = _arrays(tmp_path, 24, (), "int32")

    def disk_full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_rows(arr, 0, np.arange(12, dtype="int32") + 1)
    root = Path(arr.store_path.store.root) / arr.path
    assert not [p for p in root.rglob("*") if p.is_file() and p.name != "zarr.json"]


def test_a_zarr_not_checked_against_writes_every_row(tmp_path, monkeypatch):
    """No layout, and whole shards too go through Zarr, on a release shard_file was not checked against."""
    monkeypatch.setattr(zarr, "__version__", "99.0.0")
    _, arr = _arrays(tmp_path, 24, (3,), "float32")
    assert ShardLayout.of(arr) is None
    data = _rows(np.random.default_rng(0), 12, (3,), "float32")
    with _one_pass_writes_refused():
        write_rows(arr, 0, data)
    np.testing.assert_array_equal(arr[:12], data)
