"""posesynth.data: the map-style and chunk-aware datasets over stores, and mixing."""

from types import SimpleNamespace

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


# ---------------------------------------------------------------------------- sharding over DDP ranks
def epoch_rows(monkeypatch, path, world_size, workers, epoch=0, field="camera", **options):
    """{(rank, worker): ``field`` of the rows (n, ...) that DataLoader worker ``worker`` of
    ``workers`` of rank ``rank`` of ``world_size`` reads in ``epoch``} (workers simulated).
    The camera-frame keypoints of a sample store identify its rows (its world keypoints repeat
    where a replayed pose repeats)."""
    options = {"batch_size": 64, "seed": 5, "window": 2, "fields": (field,), "keypoint_set": "smpl24"} | options
    out = {}
    for rank in range(world_size):
        ds = PoseStoreIterable(path, rank=rank, world_size=world_size, **options)
        ds.set_epoch(epoch)
        for worker in range(workers):
            info = SimpleNamespace(id=worker, num_workers=workers)
            monkeypatch.setattr("posesynth.data.get_worker_info", lambda info=info: info)
            batches = list(ds)
            out[rank, worker] = np.concatenate([b[field].numpy() for b in batches]) if batches else np.zeros(0)
    return out


def as_set(rows):
    return set(map(bytes, rows))


def store_rows(path):
    """The camera-frame smpl24 keypoints of every row of a sample store (all distinct)."""
    rows = read_all(path)["keypoints/smpl24/camera"]
    assert len(as_set(rows)) == len(rows)
    return rows


@pytest.mark.parametrize("world_size, workers", [(1, 1), (2, 1), (2, 3), (3, 2), (7, 1)])
def test_ranks_and_workers_read_every_row_exactly_once(monkeypatch, samples, world_size, workers):
    got = epoch_rows(monkeypatch, samples, world_size, workers)
    every = np.concatenate([rows for rows in got.values() if len(rows)])
    ref = store_rows(samples)
    assert len(every) == len(ref) and as_set(every) == as_set(ref)


def test_rank_shares_differ_by_at_most_one_row_when_counts_do_not_divide(monkeypatch, samples):
    got = epoch_rows(monkeypatch, samples, 7, 1)  # 1500 rows = 7 * 214 + 2
    assert sorted(len(rows) for rows in got.values()) == [214] * 5 + [215] * 2
    for rank in range(7):
        ds = PoseStoreIterable(samples, batch_size=64, rank=rank, world_size=7)
        assert ds.rank_rows() == len(got[rank, 0]) and len(ds) == 4


def test_a_rank_reads_the_same_rows_whatever_its_number_of_workers(monkeypatch, samples):
    one = epoch_rows(monkeypatch, samples, 2, 1)
    three = epoch_rows(monkeypatch, samples, 2, 3)
    for rank in range(2):
        assert as_set(one[rank, 0]) == as_set(np.concatenate([three[rank, w] for w in range(3)]))


def test_sharding_is_deterministic_per_seed_and_epoch(monkeypatch, samples):
    first = epoch_rows(monkeypatch, samples, 2, 2, epoch=0)
    again = epoch_rows(monkeypatch, samples, 2, 2, epoch=0)
    later = epoch_rows(monkeypatch, samples, 2, 2, epoch=1)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert as_set(first[0, 0]) != as_set(later[0, 0])  # another epoch, another chunk order: other shares


def test_sharding_a_split_shares_only_the_split_rows(monkeypatch, train):
    got = epoch_rows(monkeypatch, train, 2, 1, field="world", split="val")  # one chunk: the ranks split its rows
    group = zarr.open_group(str(train), mode="r")
    val = group["joints"][:][group["split"][:] == 1]
    assert len(as_set(val)) == len(val)
    assert abs(len(got[0, 0]) - len(got[1, 0])) <= 1
    assert as_set(np.concatenate([got[0, 0], got[1, 0]])) == as_set(val) and len(val) == len(got[0, 0]) + len(got[1, 0])


def test_rank_and_world_size_are_checked(samples):
    for rank, world_size in ((2, 2), (-1, 2), (0, 0), (1, None), (0.5, 2)):
        with pytest.raises(DataError, match="rank"):
            PoseStoreIterable(samples, 8, rank=rank, world_size=world_size)


def test_mix_shards_its_batches_over_ranks(samples):
    options = {"batch_size": 16, "seed": 0, "num_batches": 9, "keypoint_set": "smpl24", "fields": ("camera",)}
    ranks = [mix([(samples, 1.0), (samples, 3.0)], rank=r, world_size=2, **options) for r in range(2)]
    assert [len(m) for m in ranks] == [5, 4]
    batches = [list(m) for m in ranks]
    assert [len(b) for b in batches] == [5, 4]
    for source in (0, 1):
        rows = [torch.cat([b["camera"][b["source"] == source] for b in rank]).numpy() for rank in batches]
        assert not as_set(rows[0]) & as_set(rows[1])  # disjoint shares of the store


def test_mix_refuses_datasets_of_different_ranks(samples):
    with pytest.raises(DataError, match="same rank and world_size"):
        mix([(PoseStoreIterable(samples, 8, rank=0, world_size=2), 1.0),
             (PoseStoreIterable(samples, 8, rank=1, world_size=2), 1.0)])


def _read_as_gloo_rank(rank, init_file, path, out):
    """One rank of a real two-process gloo group: the rows its PoseStoreIterable reads, saved."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        ds = PoseStoreIterable(path, batch_size=64, seed=5, fields=("camera",), keypoint_set="smpl24")
        np.save(f"{out}/rank{rank}.npy", np.concatenate([b["camera"].numpy() for b in ds]))
    finally:
        dist.destroy_process_group()


def test_ranks_of_a_real_gloo_process_group_read_disjoint_shares(tmp_path, samples):
    torch.multiprocessing.spawn(_read_as_gloo_rank, args=(str(tmp_path / "init"), str(samples), str(tmp_path)),
                                nprocs=2)
    got = [np.load(tmp_path / f"rank{r}.npy") for r in range(2)]
    assert [len(g) for g in got] == [750, 750]
    assert not as_set(got[0]) & as_set(got[1]) and as_set(np.concatenate(got)) == as_set(store_rows(samples))
