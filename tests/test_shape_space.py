"""Body models, honestly: what a body model's betas mean (``shape_space``, recorded by every
store), and the shipped model through ``smplx.create``."""

import contextlib
import io

import numpy as np
import pytest
import smplx
import torch
import zarr

from posesynth.body_model import DEFAULT_BODY_MODEL, SMPLX_FILE, load_body_model, shape_space, write_smplx_model
from posesynth.outputs import OutputError
from test_sampling import sample_store, training_store

SMPL_VERTICES = 6890


def shipped_arrays() -> dict[str, np.ndarray]:
    with np.load(DEFAULT_BODY_MODEL) as data:
        return {k: data[k] for k in ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights",
                                     "kintree_table")}


def smpl_sized(path):
    """A model file in SMPL's topology size: the shipped mesh cut to SMPL's 6890 vertices."""
    a = shipped_arrays()
    keep = slice(0, SMPL_VERTICES)
    np.savez(path, v_template=a["v_template"][keep], f=a["f"][(a["f"] < SMPL_VERTICES).all(1)],
             shapedirs=a["shapedirs"][keep], posedirs=a["posedirs"][keep], J_regressor=a["J_regressor"][:, keep],
             weights=a["weights"][keep], kintree_table=a["kintree_table"])
    return path


def test_the_shipped_model_is_posesynths_shape_space_whatever_its_file_name(body, tmp_path):
    copy = tmp_path / "renamed.npz"
    copy.write_bytes(DEFAULT_BODY_MODEL.read_bytes())
    for model in (body, load_body_model(copy)):
        space = shape_space(model)
        assert space["kind"] == "posesynth" and space["smpl"] is False and space["num_betas"] == 10
        assert space["betas"].startswith("posesynth's own semantic shape space, not SMPL's")
    assert shape_space(load_body_model(copy))["body_model"].startswith("renamed.npz:")


def test_a_model_with_smpls_mesh_is_marked_smpl(tmp_path):
    space = shape_space(load_body_model(smpl_sized(tmp_path / "SMPL_NEUTRAL.npz")))
    assert space["kind"] == "smpl" and space["smpl"] is True and "SMPL's betas when" in space["betas"]


def test_another_mesh_is_neither(tmp_path):
    a = shipped_arrays()
    np.savez(tmp_path / "other.npz", **{**a, "v_template": a["v_template"] * 1.01})
    space = shape_space(load_body_model(tmp_path / "other.npz"))
    assert space["kind"] == "other" and space["smpl"] is False and "6936 vertices" in space["betas"]


def test_smplx_create_loads_the_written_model_and_poses_it_as_posesynth_does(body, tmp_path):
    path = write_smplx_model(tmp_path)
    assert path == tmp_path / SMPLX_FILE == tmp_path / "smpl" / "SMPL_NEUTRAL.pkl"
    with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a warning about the 10 betas
        model = smplx.create(str(tmp_path), model_type="smpl", gender="neutral", num_betas=10,
                             vertex_ids=body.landmarks)
    g = torch.Generator().manual_seed(0)
    orient, pose = torch.randn(3, 3, generator=g) * 0.5, torch.randn(3, 69, generator=g) * 0.3
    betas = torch.randn(3, 10, generator=g)
    theirs = model(global_orient=orient, body_pose=pose, betas=betas)
    ours = body(orient, pose, betas)
    torch.testing.assert_close(theirs.vertices, ours.vertices)
    torch.testing.assert_close(theirs.joints[:, :24], ours.joints)


def test_writing_the_smplx_model_refuses_to_replace_a_file(tmp_path):
    write_smplx_model(tmp_path)
    with pytest.raises(OutputError, match="already exists"):
        write_smplx_model(tmp_path)
    assert write_smplx_model(tmp_path, overwrite=True).is_file()


@pytest.mark.parametrize("kind", ["samples", "training"])
def test_stores_say_their_betas_are_posesynths_own(tmp_path_factory, kind):
    path = sample_store(tmp_path_factory) if kind == "samples" else training_store(tmp_path_factory)
    space = zarr.open_group(str(path), mode="r").attrs["shape_space"]
    assert space["kind"] == "posesynth" and space["smpl"] is False and space["num_betas"] == 10
    assert space["body_model"].startswith("posesynth_neutral.npz:")
    assert "not SMPL's" in space["betas"] and "0 stature" in space["betas"]
