"""Mesh export: files reload with trimesh with the same vertices, in world or camera coordinates."""

import numpy as np
import pytest
import torch
import trimesh
from click.testing import CliRunner

from posesynth.cli import main
from posesynth.mesh_export import MeshExportError, export_meshes, posed_meshes
from test_render import make_sample_store, make_training_store


@pytest.fixture(scope="module")
def store(tmp_path_factory, body, shape_basis):
    return make_sample_store(tmp_path_factory.mktemp("mesh") / "samples.zarr", body, shape_basis, n=4)


@pytest.fixture(scope="module")
def world(store):
    return posed_meshes(store, "0:4")


def load(path):
    return trimesh.load(path, process=False, force="mesh")


def test_posed_meshes_are_the_body_model_posed_by_the_stored_parameters(store, world, body):
    import zarr

    idx, verts, faces, _ = world
    g = zarr.open_group(str(store), mode="r")
    out = body(torch.as_tensor(g["smpl/global_orient"][:]), torch.as_tensor(g["smpl/body_pose"][:]),
               torch.as_tensor(g["smpl/betas"][:]), torch.as_tensor(g["smpl/transl"][:]))
    np.testing.assert_allclose(verts, out.vertices.detach().numpy(), atol=1e-6)
    assert idx.tolist() == [0, 1, 2, 3] and (faces == body.faces).all()
    # World frame: the body stands on the floor (y = 0) near the origin.
    assert verts[..., 1].min() > -0.1 and np.abs(verts[..., [0, 2]].mean(1)).max() < 0.5


@pytest.mark.parametrize("fmt", ["obj", "ply", "glb"])
def test_one_file_per_sample_reloads_with_the_same_vertices_and_faces(store, world, fmt, tmp_path):
    idx, verts, faces, _ = world
    paths = export_meshes(store, "1:3", tmp_path / "out", fmt)
    assert [p.name for p in paths] == [f"sample_000001.{fmt}", f"sample_000002.{fmt}"]
    for path, v in zip(paths, verts[1:3]):
        mesh = load(path)
        # 1e-6 m: OBJ is text with 8 decimals, and float32 posing varies by ~1e-7 with the batch.
        np.testing.assert_allclose(mesh.vertices, v, atol=1e-6)
        assert (mesh.faces == faces).all()


@pytest.mark.parametrize("fmt", ["obj", "ply", "glb"])
def test_camera_frame_is_R_x_plus_t(store, world, fmt, tmp_path):
    import zarr

    g = zarr.open_group(str(store), mode="r")
    R, t = g["camera/R"][2, 0].astype(np.float64), g["camera/t"][2, 0].astype(np.float64)
    [path] = export_meshes(store, "2", tmp_path / f"cam.{fmt}", frame="camera")
    mesh = load(path)
    np.testing.assert_allclose(mesh.vertices, world[1][2] @ R.T + t, atol=1e-5)
    # OpenCV camera frame: the body is in front of the camera (z > 0) and its head is up (-y).
    assert mesh.vertices[:, 2].min() > 0
    pelvis_y = (world[1][2] @ R.T + t)[:, 1].mean()
    assert mesh.vertices[mesh.vertices[:, 1].argmin(), 1] < pelvis_y


def test_glb_scene_keeps_each_samples_vertices_and_offsets_it_in_its_node(store, world, tmp_path):
    [path] = export_meshes(store, "0:3", tmp_path / "scene.glb", scene=True, spacing=1.5)
    scene = trimesh.load(path, process=False)
    assert sorted(scene.geometry) == ["sample_000000", "sample_000001", "sample_000002"]
    for k in range(3):
        name = f"sample_{k:06d}"
        np.testing.assert_allclose(scene.geometry[name].vertices, world[1][k], atol=1e-6)
        transform, _ = scene.graph[name]
        assert transform[0, 3] == pytest.approx((k - 1) * 1.5)


@pytest.mark.parametrize("fmt", ["obj", "ply"])
def test_obj_and_ply_scenes_hold_every_sample_side_by_side(store, world, fmt, tmp_path):
    [path] = export_meshes(store, "0:3", tmp_path / "scene", fmt, scene=True, spacing=2.0)
    assert path.suffix == f".{fmt}"
    mesh = load(path)
    V = world[1].shape[1]
    assert mesh.vertices.shape == (3 * V, 3)
    for k in range(3):
        np.testing.assert_allclose(mesh.vertices[k * V:(k + 1) * V], world[1][k] + [(k - 1) * 2.0, 0, 0], atol=1e-6)


def test_export_mesh_command_and_its_errors(store, tmp_path, body, shape_basis):
    res = CliRunner().invoke(main, ["export-mesh", str(store), "--index", "0,3", "--format", "ply",
                                    "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["sample_000000.ply", "sample_000003.ply"]
    train = make_training_store(tmp_path / "train.zarr", shape_basis, body, n=2)
    res = CliRunner().invoke(main, ["export-mesh", str(train), "--frame", "camera", "--out", str(tmp_path / "a.obj")])
    assert res.exit_code != 0 and "no cameras" in res.output
    res = CliRunner().invoke(main, ["export-mesh", str(train), "--out", str(tmp_path / "a.obj")])
    assert res.exit_code == 0 and (tmp_path / "a.obj").is_file()
    with pytest.raises(MeshExportError, match="format"):
        export_meshes(store, "0", tmp_path / "a.stl")
