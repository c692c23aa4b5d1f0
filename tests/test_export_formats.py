"""posesynth export --format humandata and coco on the real fixture store (1500 samples, 2 views,
every keypoint set, noisy 2D); npz and h5 as any HDF5 reader opens them, with progress."""

import json
import sys

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from posesynth.cli import main
from posesynth.export import ExportError, export_store
from posesynth.export.coco import coco_visibility
from posesynth.export.humandata import CONVENTIONS, HUMAN_DATA_SIZE
from posesynth.kinematics import forward_kinematics
from posesynth.rotations import axis_angle_to_matrix
from posesynth.sample_recipe import resolve_sample_recipe
from posesynth.sampling import sample_to_store
from test_sampling import SMALL, read_all, sample_store, training_store

N, V = 1500, 2


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return sample_store(tmp_path_factory)


@pytest.fixture(scope="module")
def store(samples):
    return read_all(samples)


@pytest.fixture(scope="module")
def humandata(samples, tmp_path_factory):
    """The default HumanData export (h36m17 2D and 3D), loaded as a dict."""
    (path,) = export_store(samples, "humandata", tmp_path_factory.mktemp("hd") / "synth.npz")
    with np.load(path, allow_pickle=True) as data:
        return {k: data[k].item() if data[k].ndim == 0 else data[k] for k in data.files}


@pytest.fixture(scope="module")
def smpl_only(tmp_path_factory):
    """A store with the smpl24 set only and no noisy 2D."""
    recipe = resolve_sample_recipe(overrides=SMALL + ['sample.keypoint_sets=["smpl24"]', "sample.noise=false"])
    out = tmp_path_factory.mktemp("smpl_only") / "s.zarr"
    return sample_to_store(training_store(tmp_path_factory), out, 128, recipe=recipe, device="cpu").out


@pytest.fixture(scope="module")
def coco(samples, tmp_path_factory):
    (path,) = export_store(samples, "coco", tmp_path_factory.mktemp("coco") / "keypoints.json")
    return path


def as_rows(values):
    """(N, V, ...) -> (N * V, ...), the exports' row order."""
    return values.reshape((-1,) + values.shape[2:])


def store_columns(meta_set, store_attrs_names):
    """Indices into the store's joints of a HumanData file's columns (named in its meta)."""
    return [store_attrs_names.index(n) for n in meta_set["names"]]


# ---------------------------------------------------------------------------- humandata
def test_humandata_loads_with_numpy_into_the_documented_keys_and_shapes(humandata):
    M = N * V
    assert set(humandata) == {"__key_strict__", "__keypoints_compressed__", "config", "image_path", "bbox_xywh",
                              "keypoints2d", "keypoints2d_mask", "keypoints2d_convention", "keypoints3d",
                              "keypoints3d_mask", "keypoints3d_convention", "smpl", "meta"}
    smpl = humandata["smpl"]
    assert {k: v.shape for k, v in smpl.items()} == {"global_orient": (M, 3), "body_pose": (M, 23, 3),
                                                     "betas": (M, 10), "transl": (M, 3)}
    assert all(v.dtype == np.float32 for v in smpl.values())
    assert humandata["keypoints2d"].shape == (M, 17, 3) and humandata["keypoints3d"].shape == (M, 17, 4)
    assert humandata["bbox_xywh"].shape == (M, 5) and humandata["image_path"].shape == (M,)
    for key in ("keypoints2d", "keypoints3d"):
        mask = humandata[f"{key}_mask"]
        assert mask.shape == (HUMAN_DATA_SIZE,) and mask.dtype == np.uint8 and mask.sum() == 17
        assert humandata[f"{key}_convention"] == "human_data"
        assert humandata["meta"][key]["convention"] == "h36m"
    assert humandata["__keypoints_compressed__"] is True and humandata["config"] == "posesynth"
    assert humandata["meta"]["shape_space"]["kind"] == "posesynth" and humandata["meta"]["views"] == V
    assert list(humandata["image_path"][:3]) == ["00000000_view0.png", "00000000_view1.png", "00000001_view0.png"]


def test_every_keypoint_set_has_its_place_in_human_data():
    from posesynth.keypoint_sets import KEYPOINT_SETS

    assert set(CONVENTIONS) == set(KEYPOINT_SETS)
    for name, (_, index) in CONVENTIONS.items():
        assert len(index) == len(KEYPOINT_SETS[name]) == len(set(index)) and max(index) < HUMAN_DATA_SIZE


def test_humandata_columns_are_the_set_in_human_data_order(humandata):
    names = humandata["meta"]["keypoints2d"]["names"]
    index = dict(zip(("pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
                      "spine", "thorax", "neck_nose", "head", "left_shoulder", "left_elbow", "left_wrist",
                      "right_shoulder", "right_elbow", "right_wrist"), CONVENTIONS["h36m17"][1]))
    assert [index[n] for n in names] == list(np.flatnonzero(humandata["keypoints2d_mask"]))


def test_humandata_keypoints_are_the_stores_per_view_with_visibility_as_confidence(humandata, store, samples):
    from posesynth.store import open_store

    joint_names = open_store(samples).attrs["keypoint_sets"]["h36m17"]["joint_names"]
    cols = store_columns(humandata["meta"]["keypoints2d"], joint_names)
    k2, k3 = humandata["keypoints2d"], humandata["keypoints3d"]
    np.testing.assert_array_equal(k2[..., :2], as_rows(store["keypoints/h36m17/pixels"])[:, cols])
    np.testing.assert_array_equal(k2[..., 2], as_rows(store["keypoints/h36m17/visible"] & 1)[:, cols])
    np.testing.assert_array_equal(k3[..., :3], as_rows(store["keypoints/h36m17/camera"])[:, cols])
    assert (k3[..., 3] == 1).all()


def test_humandata_smpl_in_each_camera_frame_poses_the_3d_keypoints(samples, tmp_path, body):
    (path,) = export_store(samples, "humandata", tmp_path / "smpl24.npz", keypoint_set="smpl24")
    with np.load(path, allow_pickle=True) as data:
        smpl, k3 = data["smpl"].item(), data["keypoints3d"]
    pose = np.concatenate([smpl["global_orient"][:, None], smpl["body_pose"]], axis=1)
    rest = body.rest_joints(torch.as_tensor(smpl["betas"], dtype=torch.float64))
    _, joints = forward_kinematics(axis_angle_to_matrix(torch.as_tensor(pose, dtype=torch.float64)), rest)
    joints = joints + torch.as_tensor(smpl["transl"], dtype=torch.float64)[:, None]
    np.testing.assert_allclose(joints.numpy(), k3[..., :3], atol=1e-5)  # smpl24 is in SMPL's (= human_data) order


def test_humandata_2d_set_may_differ_from_the_3d_set(samples, tmp_path, store):
    (path,) = export_store(samples, "humandata", tmp_path / "mixed.npz", keypoint_set="h36m17",
                           keypoint_set_2d="coco17", noisy=True)
    with np.load(path, allow_pickle=True) as data:
        meta, k2 = data["meta"].item(), data["keypoints2d"]
        assert data["keypoints2d_mask"].sum() == 17 and not np.array_equal(data["keypoints2d_mask"],
                                                                          data["keypoints3d_mask"])
    assert meta["keypoints2d"]["convention"] == "coco" and meta["keypoints3d"]["convention"] == "h36m"
    cols = [list(CONVENTIONS["coco17"][1]).index(i) for i in sorted(CONVENTIONS["coco17"][1])]
    np.testing.assert_array_equal(k2[..., :2], as_rows(store["keypoints/coco17/pixels_noisy"])[:, cols])


def test_humandata_boxes_hold_every_labelled_keypoint_inside_the_image(humandata, store):
    box, k2 = humandata["bbox_xywh"], humandata["keypoints2d"]
    size = as_rows(store["camera/image_size"])
    labelled = k2[..., 2] > 0
    assert (box[:, 4] == labelled.any(1)).all()
    x, y = k2[..., 0], k2[..., 1]
    inside = ((x >= box[:, :1] - 1e-3) & (x <= box[:, :1] + box[:, 2:3] + 1e-3)
              & (y >= box[:, 1:2] - 1e-3) & (y <= box[:, 1:2] + box[:, 3:4] + 1e-3))
    assert inside[labelled].all()
    assert (box[:, :2] >= 0).all() and (box[:, :2] + box[:, 2:4] <= size + 1e-3).all()


def test_humandata_refuses_a_training_store(tmp_path, tmp_path_factory):
    with pytest.raises(ExportError, match="--format humandata needs a sample store"):
        export_store(training_store(tmp_path_factory), "humandata", tmp_path / "t.npz")
    assert not (tmp_path / "t.npz").exists()


def test_humandata_names_the_option_of_a_set_the_store_lacks(tmp_path, smpl_only):
    with pytest.raises(ExportError, match=r"--keypoint-set: the store has no h36m17 keypoints \(it has smpl24\)"):
        export_store(smpl_only, "humandata", tmp_path / "h.npz")
    with pytest.raises(ExportError, match=r"--keypoint-set-2d: the store has no coco17 keypoints"):
        export_store(smpl_only, "humandata", tmp_path / "h.npz", keypoint_set="smpl24", keypoint_set_2d="coco17")


def test_humandata_noisy_needs_noisy_2d(tmp_path, smpl_only):
    with pytest.raises(ExportError, match="--noisy: the store has no noisy 2D"):
        export_store(smpl_only, "humandata", tmp_path / "h.npz", keypoint_set="smpl24", noisy=True)


# ---------------------------------------------------------------------------- coco
def test_coco_visibility_from_the_store_bits():
    # bit 0 in frame, bit 1 not self-occluded
    np.testing.assert_array_equal(coco_visibility(np.array([0, 1, 2, 3], np.uint8)), [0, 1, 0, 2])


def test_coco_json_has_one_image_and_person_per_sample_view(coco, store):
    data = json.loads(coco.read_text())
    assert set(data) == {"info", "licenses", "categories", "images", "annotations"}
    (category,) = data["categories"]
    assert category["id"] == 1 and category["name"] == "person" and len(category["keypoints"]) == 17
    assert category["keypoints"][:3] == ["nose", "left_eye", "right_eye"] and [16, 14] in category["skeleton"]
    images = data["images"]
    assert len(images) == N * V and [im["id"] for im in images] == list(range(1, N * V + 1))
    size = as_rows(store["camera/image_size"])
    assert all([im["width"], im["height"]] == size[i].tolist() for i, im in enumerate(images))
    assert images[3] == {"id": 4, "file_name": "00000001_view1.png", "width": 1000, "height": 1000,
                         "sample": 1, "view": 1}
    ann = data["annotations"][0]
    assert set(ann) == {"id", "image_id", "category_id", "keypoints", "num_keypoints", "bbox", "area", "iscrowd"}
    assert ann["category_id"] == 1 and ann["iscrowd"] == 0 and len(ann["keypoints"]) == 51
    assert ann["area"] == pytest.approx(ann["bbox"][2] * ann["bbox"][3], abs=0.01)


def test_coco_keypoints_are_the_coco17_2d_with_visibility_0_1_2(coco, store):
    anns = {a["image_id"]: a for a in json.loads(coco.read_text())["annotations"]}
    pixels = as_rows(store["keypoints/coco17/pixels"])
    v = coco_visibility(as_rows(store["keypoints/coco17/visible"]))
    assert set(anns) == {r + 1 for r in range(N * V) if v[r].any()}
    for r in range(0, N * V, 37):
        k = np.array(anns[r + 1]["keypoints"]).reshape(17, 3)
        np.testing.assert_array_equal(k[:, 2], v[r])
        np.testing.assert_allclose(k[:, :2], np.where(v[r, :, None] > 0, pixels[r], 0), atol=0.006)
        assert anns[r + 1]["num_keypoints"] == (v[r] > 0).sum()
    assert {1, 2} <= set(np.unique(v))


def test_coco_loads_with_pycocotools_and_scores_itself_perfectly(coco):
    pytest.importorskip("pycocotools")
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(coco))
        assert len(gt.getImgIds()) == N * V and gt.getCatIds() == [1]
        assert gt.loadAnns(gt.getAnnIds(imgIds=[1]))[0]["num_keypoints"] > 0
        dt = gt.loadRes([{**a, "score": 1.0} for a in gt.loadAnns(gt.getAnnIds())])
        ev = COCOeval(gt, dt, iouType="keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)  # AP over OKS thresholds


def test_coco_needs_the_coco17_set(tmp_path, smpl_only):
    with pytest.raises(ExportError, match=r"--format coco: the store has no coco17 keypoints \(it has smpl24\)"):
        export_store(smpl_only, "coco", tmp_path / "c.json")


# ---------------------------------------------------------------------------- both, through the CLI
@pytest.mark.parametrize("fmt, name", [("humandata", "h.npz"), ("coco", "c.json")])
def test_cli_writes_the_format_and_refuses_an_existing_file(samples, tmp_path, fmt, name):
    out = tmp_path / name
    args = ["export", str(samples), "--format", fmt, "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    written = out.read_bytes()
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 1 and "already exists; pass --overwrite" in again.output
    assert out.read_bytes() == written and sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("fmt", ["humandata", "coco"])
def test_exports_are_deterministic(samples, tmp_path, fmt):
    (a,) = export_store(samples, fmt, tmp_path / f"a.{fmt}")
    (b,) = export_store(samples, fmt, tmp_path / f"b.{fmt}")
    assert a.read_bytes() == b.read_bytes()


# ---------------------------------------------------------------------------- npz, h5
def test_h5_is_gzip_compressed(samples, tmp_path):
    (path,) = export_store(samples, "h5", tmp_path / "out.h5")
    with h5py.File(path, "r") as f:
        assert f["keypoints/h36m17/pixels"].compression == "gzip"
        assert f["keypoints/h36m17/pixels"].compression_opts == 4


@pytest.mark.parametrize("fmt", ["npz", "h5"])
def test_npz_and_h5_show_progress_over_chunks_on_a_terminal(samples, tmp_path, monkeypatch, capsys, fmt):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    export_store(samples, fmt, tmp_path / f"out.{fmt}")
    arrays = len(read_all(samples))
    bar = capsys.readouterr().err
    assert f"{fmt}: 100%" in bar and f"{arrays * 6}/{arrays * 6} [" in bar  # 1500 rows: 6 chunks of 256


def test_no_progress_when_stderr_is_not_a_terminal(samples, tmp_path, capsys):
    export_store(samples, "npz", tmp_path / "out.npz")
    assert capsys.readouterr().err == ""
