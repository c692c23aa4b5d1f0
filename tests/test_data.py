"""posesynth.data: the map-style and chunk-aware datasets over stores, and mixing."""

import numpy as np
import pytest
import torch
import zarr
from torch.utils.data import DataLoader

from posesynth.data import DataError, PoseStoreDataset, PoseStoreIterable, mix, normalise_pixels
from posesynth.store import StoreError
from test_sampling import read_all, sample_store, training_store


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return sample_store(tmp_path_factory)


@pytest.fixture(scope="module")
def train(tmp_path_factory):
    return training_store(tmp_path_factory)


def test_map_style_fields_and_shapes(samples):
    a = read_all(samples)
    fields = ("pixels", "pixels_normalised", "camera", "world", "visible", "K", "label", "betas")
    ds = PoseStoreDataset(samples, keypoint_set="h36m17", fields=fields)
    assert len(ds) == 1500
    item = ds[7]
    assert {k: tuple(v.shape) for k, v in item.items()} == {
        "pixels": (2, 17, 2), "pixels_normalised": (2, 17, 2), "camera": (2, 17, 3), "world": (17, 3),
        "visible": (2, 17), "K": (2, 3, 3), "label": (), "betas": (10,)}
    assert item["visible"].dtype == torch.bool and item["label"].dtype == torch.int64
    np.testing.assert_array_equal(item["pixels"], a["keypoints/h36m17/pixels"][7])
    np.testing.assert_array_equal(item["visible"], a["keypoints/h36m17/visible"][7] == 3)
    # VideoPose3D's normalisation of a 1000 x 1000 image: x / 500 - 1.
    np.testing.assert_allclose(item["pixels_normalised"], a["keypoints/h36m17/pixels"][7] / 500 - 1, atol=1e-6)
    one = PoseStoreDataset(samples, keypoint_set="coco17", view=1, noisy=True, fields=("pixels", "K"))[3]
    np.testing.assert_array_equal(one["pixels"], a["keypoints/coco17/pixels_noisy"][3, 1])
    assert one["K"].shape == (3, 3)


def test_normalise_pixels_keeps_the_aspect_ratio():
    p = np.array([[[[0.0, 0.0], [1920.0, 1080.0]]]], dtype=np.float32)
    out = normalise_pixels(p, np.array([[[1920, 1080]]]))
    np.testing.assert_allclose(out[0, 0], [[-1, -1080 / 1920], [1, 1080 / 1920]])


def test_dataloader_batches_read_whole_chunks_once(samples):
    ds = PoseStoreDataset(samples, fields=("world", "label"))
    loader = DataLoader(ds, batch_size=100, shuffle=True, generator=torch.Generator().manual_seed(0))
    batches = list(loader)
    assert batches[0]["world"].shape == (100, 17, 3)
    ref = read_all(samples)["keypoints/h36m17/world"]
    got = torch.cat([b["world"] for b in batches]).numpy()
    assert sorted(map(bytes, got)) == sorted(map(bytes, ref))
    # Repeated and negative indices.
    items = ds.__getitems__([5, 5, -1])
    assert torch.equal(items[0]["world"], items[1]["world"])
    np.testing.assert_array_equal(items[2]["world"], ref[-1])
    with pytest.raises(IndexError):
        ds[1500]


def test_iterable_covers_every_row_once_with_two_workers(samples):
    ds = PoseStoreIterable(samples, batch_size=64, seed=1, window=2, fields=("world",), keypoint_set="smpl24")
    loader = DataLoader(ds, batch_size=None, num_workers=2)
    batches = list(loader)
    assert all(len(b["world"]) <= 64 for b in batches) and len(batches) <= len(ds) + 2
    got = torch.cat([b["world"] for b in batches]).numpy()
    ref = read_all(samples)["keypoints/smpl24/world"]
    assert len(got) == len(ref) and sorted(map(bytes, got)) == sorted(map(bytes, ref))
    # Shuffled: not store order, and another epoch has another order.
    first = np.concatenate([b["world"].numpy() for b in DataLoader(ds, batch_size=None)])
    assert not np.array_equal(first, ref)
    ds.set_epoch(1)
    second = np.concatenate([b["world"].numpy() for b in DataLoader(ds, batch_size=None)])
    assert not np.array_equal(first, second)
    ordered = PoseStoreIterable(samples, batch_size=500, shuffle=False, fields=("world",), keypoint_set="smpl24")
    np.testing.assert_array_equal(np.concatenate([b["world"] for b in ordered]), ref)


def test_training_store_supports_3d_fields_and_splits(train):
    group = zarr.open_group(str(train), mode="r")
    val = np.flatnonzero(group["split"][:] == 1)
    ds = PoseStoreDataset(train, keypoint_set="smpl24", split="val", fields=("world", "label", "body_pose"))
    assert len(ds) == len(val) > 0
    np.testing.assert_array_equal(ds[0]["world"], group["joints"][int(val[0])])
    it = PoseStoreIterable(train, batch_size=16, split="train", keypoint_set="smpl24", fields=("world",))
    assert sum(len(b["world"]) for b in it) == group["split"].shape[0] - len(val)
    with pytest.raises(DataError, match="no cameras.*posesynth sample --checkpoint"):
        PoseStoreDataset(train, keypoint_set="smpl24", fields=("pixels",))
    with pytest.raises(DataError, match="joints are smpl24"):
        PoseStoreDataset(train, fields=("world",))


def test_bad_requests_are_named(samples):
    with pytest.raises(DataError, match="no keypoint set 'mpii'"):
        PoseStoreDataset(samples, keypoint_set="mpii")
    with pytest.raises(DataError, match="view 2 out of range"):
        PoseStoreDataset(samples, view=2)
    with pytest.raises(DataError, match="no splits"):
        PoseStoreDataset(samples, split="train")
    with pytest.raises(DataError, match="unknown field"):
        PoseStoreDataset(samples, fields=("depth",))


def test_incomplete_stores_are_refused(tmp_path, samples):
    import shutil

    copy = tmp_path / "copy.zarr"
    shutil.copytree(samples, copy)
    group = zarr.open_group(str(copy), mode="r+")
    group.attrs["posesynth"] = {**group.attrs["posesynth"], "complete": False}
    with pytest.raises(StoreError, match="incomplete"):
        PoseStoreDataset(copy)


def test_mix_draws_rows_by_weight(samples, train):
    mixed = mix([(train, 1.0), (samples, 3.0)], batch_size=64, seed=0, num_batches=40,
                keypoint_set="smpl24", fields=("world", "label"))
    batches = list(DataLoader(mixed, batch_size=None, num_workers=2))
    assert len(batches) == 40 and all(b["world"].shape == (64, 24, 3) for b in batches)
    source = torch.cat([b["source"] for b in batches]).float()
    assert abs(source.mean().item() - 0.75) < 0.05
    real = torch.cat([b["world"][b["source"] == 0] for b in batches])
    joints = zarr.open_group(str(train), mode="r")["joints"][:]
    assert set(map(bytes, real.numpy())) <= set(map(bytes, joints))
    with pytest.raises(DataError, match="same fields"):
        mix([(PoseStoreIterable(samples, 8, fields=("world",)), 1.0),
             (PoseStoreIterable(samples, 8, fields=("pixels",)), 1.0)])
