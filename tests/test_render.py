"""Rendering for real: silhouettes, vertex and keypoint positions against the camera model,
the matplotlib fallback against GL, canonical views, grids and the ``render`` command.

``make_sample_store`` writes a small sample store in docs/sample_store.md's layout from real
poses (a committed mocap clip, retargeted) and cameras drawn by ``posesynth.cameras``; the mesh
export and plot tests use it too.
"""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from conftest import BANDAI_RAISE_LEFT, KICK_LEFT
from posesynth import render
from posesynth.cameras import CameraDistribution, Cameras, project, sample_cameras
from posesynth.cli import main
from posesynth.mocap import read_motion
from posesynth.retarget import retarget
from posesynth.rig_map import detect_rig
from posesynth.rotations import matrix_to_axis_angle
from posesynth.skeleton import JOINT_INDEX, SMPL_JOINT_NAMES, SMPL_PARENTS
from posesynth.store import add_array, create_store, mark_complete
from test_errors import error_line
from test_info import damaged_sample_store

# CI sets POSESYNTH_REQUIRE_GL=1 so that a machine without EGL fails instead of skipping.
GL_REQUIRED = os.environ.get("POSESYNTH_REQUIRE_GL", "") not in ("", "0")


@pytest.fixture(scope="session")
def gl():
    """Skip (or, with POSESYNTH_REQUIRE_GL=1, fail) when no headless GL context can be made.

    The context is made on first use, not when the module is collected."""
    ok, why = render.gl_available()
    if not ok:
        if GL_REQUIRED:
            pytest.fail(f"POSESYNTH_REQUIRE_GL is set but there is no headless GL context: {why}")
        pytest.skip(f"no headless GL context: {why}")


needs_gl = pytest.mark.usefixtures("gl")


# ---------------------------------------------------------------------------- fixtures
_RETARGETED: dict = {}


def real_poses(path, shape_basis, frames):
    """SMPL parameters (axis-angle) of some frames of a real clip, centred on the origin."""
    if path not in _RETARGETED:  # retargeting takes a second or two: once per clip per session
        motion = read_motion(path)
        bound = detect_rig(motion.joint_names).bind(motion.joint_names)
        rot, mask = bound.frame_rotations(motion.rotations)
        _RETARGETED[path] = retarget(bound.targets(motion.positions), *shape_basis, rot, mask)
    r = _RETARGETED[path]
    idx = np.linspace(0, r.transl.shape[0] - 1, frames).round().astype(int)
    go = matrix_to_axis_angle(r.global_orient[idx]).numpy()
    bp = matrix_to_axis_angle(r.body_pose[idx]).reshape(len(idx), 69).numpy()
    transl = r.transl[idx].numpy().copy()
    transl[:, [0, 2]] -= r.joints[idx][:, 0, [0, 2]].numpy()  # pelvis above the origin
    betas = np.repeat(r.betas.numpy()[None], len(idx), 0)
    return go, bp, betas, transl


def make_sample_store(path, body, shape_basis, n=6, views=1, distortion=False, noisy=True,
                      image_size=(640, 480), seed=0):
    """A complete sample store (docs/sample_store.md) of ``n`` real poses and random cameras."""
    go, bp, betas, transl = (np.concatenate(a) for a in zip(
        real_poses(KICK_LEFT, shape_basis, (n + 1) // 2), real_poses(BANDAI_RAISE_LEFT, shape_basis, n // 2)))
    with torch.no_grad():
        joints = body(torch.as_tensor(go), torch.as_tensor(bp), torch.as_tensor(betas), torch.as_tensor(transl)).joints
    dist = CameraDistribution(image_size=image_size, distance_m=(3.0, 4.5), focal_px=(500.0, 800.0),
                              principal_jitter_px=15.0, elevation_deg=(-5.0, 25.0), views=views,
                              distortion={"k1": (-0.2, -0.1), "k2": (0.0, 0.05)} if distortion else None)
    cams = sample_cameras(dist, joints.double(), torch.Generator().manual_seed(seed))
    pixels, cam_pts = project(joints.double(), cams)
    W, H = image_size
    in_frame = ((pixels[..., 0] >= -0.5) & (pixels[..., 0] < W - 0.5) & (pixels[..., 1] >= -0.5)
                & (pixels[..., 1] < H - 0.5) & (cam_pts[..., 2] > 0)).numpy()
    occluded = np.zeros_like(in_frame)
    occluded[..., [JOINT_INDEX["left_wrist"], JOINT_INDEX["right_knee"]]] = True  # some hollow keypoints
    visible = (in_frame.astype(np.uint8) | (~occluded).astype(np.uint8) << 1)
    rng = np.random.default_rng(seed)
    group = create_store(path, "samples", {
        "labels": ["kick", "raise"], "seed": seed,
        "keypoint_sets": {"smpl24": {"joint_names": list(SMPL_JOINT_NAMES), "parents": list(SMPL_PARENTS),
                                     "derivation": "the body model's joints"}},
    })
    arrays = {
        "smpl/global_orient": go, "smpl/body_pose": bp, "smpl/betas": betas, "smpl/transl": transl,
        "label": (np.arange(n) >= (n + 1) // 2).astype(np.int32),
        "keypoints/smpl24/world": joints.numpy(), "keypoints/smpl24/camera": cam_pts.numpy(),
        "keypoints/smpl24/pixels": pixels.numpy(), "keypoints/smpl24/visible": visible,
        "camera/K": cams.K.numpy(), "camera/R": cams.R.numpy(), "camera/t": cams.t.numpy(),
        "camera/distortion": cams.distortion.numpy(), "camera/image_size": cams.image_size.numpy(),
    }
    if noisy:
        arrays["keypoints/smpl24/pixels_noisy"] = pixels.numpy() + rng.normal(0, 3.0, pixels.shape)
    for name, data in arrays.items():
        add_array(group, name, data.astype(np.int32 if data.dtype.kind == "i" and name != "keypoints/smpl24/visible"
                                           else (np.uint8 if data.dtype == np.uint8 else np.float32)),
                  rows_per_chunk=4)
    mark_complete(group, num_samples=n)
    return path


def make_training_store(path, shape_basis, body, n=4):
    go, bp, betas, transl = real_poses(KICK_LEFT, shape_basis, n)
    with torch.no_grad():
        joints = body(torch.as_tensor(go), torch.as_tensor(bp), torch.as_tensor(betas), torch.as_tensor(transl)).joints
    group = create_store(path, "training", {"labels": {"content": ["kick", "raise"], "source": ["hdm05"]},
                                            "body_model": body.identity, "splits": ["train", "val"]})
    for name, data in {"global_orient": go, "body_pose": bp, "betas": betas, "transl": transl,
                       "joints": joints.numpy()}.items():
        add_array(group, name, data.astype(np.float32))
    add_array(group, "content", (np.arange(n) % 2).astype(np.int32))
    add_array(group, "split", np.zeros(n, np.uint8))
    mark_complete(group, num_frames=n)
    return path


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory, body, shape_basis):
    return make_sample_store(tmp_path_factory.mktemp("render") / "samples.zarr", body, shape_basis)


@pytest.fixture(scope="module")
def distorted_store(tmp_path_factory, body, shape_basis):
    return make_sample_store(tmp_path_factory.mktemp("render") / "distorted.zarr", body, shape_basis, n=2,
                             distortion=True, image_size=(480, 640), seed=3)


def cams_of(cameras):
    """RenderCameras (B of them) as posesynth.cameras.Cameras (B, 1)."""
    t = lambda name: torch.as_tensor(np.stack([getattr(c, name) for c in cameras]))[:, None]  # noqa: E731
    size = torch.tensor([[c.width, c.height] for c in cameras], dtype=torch.int32)[:, None]
    return Cameras(t("K"), t("R"), t("t"), t("distortion"), size)


def posed(body, samples):
    return render.pose_vertices(body, samples)


def occluded(verts, faces, origin, chosen):
    """For each vertex in ``chosen``: does a triangle not touching it cross the segment from
    ``origin`` (the camera centre) to it?  Moller-Trumbore, vectorised over triangles."""
    tri = verts[faces].astype(np.float64)
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    out = np.zeros(len(chosen), bool)
    for k, i in enumerate(chosen):
        d = verts[i] - origin
        p = np.cross(d, e2)
        det = (e1 * p).sum(1)
        ok = np.abs(det) > 1e-12
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        s = origin - tri[:, 0]
        u = (s * p).sum(1) * inv
        q = np.cross(s, e1)
        v = (d * q).sum(1) * inv
        t = (e2 * q).sum(1) * inv
        hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 1e-6) & (t < 1 - 1e-4) & ~(faces == i).any(1)
        out[k] = hit.any()
    return out


def facing_vertices(body, verts, cam, threshold=0.5):
    """Indices of vertices whose normal points at the camera (cosine > threshold)."""
    normals = render.MeshTopology(body.faces, body.num_vertices).vertex_normals(verts[None])[0]
    centre = -cam.R.T @ cam.t
    to_cam = centre - verts
    cos = (normals * to_cam).sum(1) / np.linalg.norm(to_cam, axis=1)
    return np.flatnonzero(cos > threshold)


@needs_gl
def test_a_headless_gl_context_can_be_made():
    ok, why = render.gl_available()
    assert ok and why, why


# ---------------------------------------------------------------------------- projection maths
def test_gl_projection_reproduces_K_with_the_pixel_centre_convention():
    K = np.array([[700.0, 0.0, 301.3], [0.0, 690.0, 247.9], [0.0, 0.0, 1.0]])
    W, H = 640, 480
    pts = np.random.default_rng(0).normal(size=(50, 3)) * [1, 1, 0.5] + [0, 0, 5]
    clip = np.c_[pts, np.ones(len(pts))] @ render.gl_projection(K, W, H).T
    ndc = clip[:, :3] / clip[:, 3:]
    # Viewport transform: NDC -1..1 covers pixel edges -0.5 .. W-0.5, no y flip (row 0 first).
    u = (ndc[:, 0] + 1) / 2 * W - 0.5
    v = (ndc[:, 1] + 1) / 2 * H - 0.5
    np.testing.assert_allclose(u, K[0, 0] * pts[:, 0] / pts[:, 2] + K[0, 2], atol=1e-9)
    np.testing.assert_allclose(v, K[1, 1] * pts[:, 1] / pts[:, 2] + K[1, 2], atol=1e-9)
    assert np.all(np.abs(ndc[:, 2]) < 1)


def test_render_camera_projects_like_the_camera_model(distorted_store):
    s = render.read_store_samples(distorted_store, "0:2")
    pts = s.keypoints_world
    mine = np.stack([c.project(p)[0] for c, p in zip(s.cameras, pts)])
    theirs, _ = project(torch.as_tensor(pts), cams_of(s.cameras))
    np.testing.assert_allclose(mine, theirs[:, 0].numpy(), atol=1e-3)
    np.testing.assert_allclose(mine, s.pixels, atol=1e-2)  # the store's own 2D


# A strongly barrel-distorted lens (its limit: 1.2 x the corner radius, r^2 < 0.92) and points
# (x/z, y/z) in the image, outside it but inside the limit, and past the limit, where the
# polynomial would fold them back into the image ((1.2, 0.5) would land at pixel (595, 356)).
LENS = dict(K=np.array([[500.0, 0.0, 319.5], [0.0, 500.0, 239.5], [0.0, 0.0, 1.0]]), width=640, height=480,
            distortion=np.array([-0.35, 0.02, 0.001, -0.002]))
IN_IMAGE = [[0.0, 0.0], [0.1, -0.2], [0.5, 0.3]]
OUT_OF_IMAGE = [[0.9, 0.1], [0.05, 0.62]]
PAST_THE_LIMIT = [[1.2, 0.5], [-1.0, -0.9], [0.3, 1.4], [0.0, -0.97]]


def lens_scene() -> tuple[render.RenderCamera, np.ndarray]:
    """The ``LENS`` camera, turned and moved, and world points (N, 3) float32 on the rays of
    IN_IMAGE + OUT_OF_IMAGE + PAST_THE_LIMIT, 2 to 5 m deep."""
    from scipy.spatial.transform import Rotation

    R, t = Rotation.from_rotvec([0.2, -0.4, 0.1]).as_matrix(), np.array([0.3, -1.2, 0.5])
    rays = np.array(IN_IMAGE + OUT_OF_IMAGE + PAST_THE_LIMIT)
    z = np.linspace(2.0, 5.0, len(rays))[:, None]
    world = (np.concatenate([rays * z, z], axis=1) - t) @ R  # R^T (x_cam - t)
    return render.RenderCamera(R=R, t=t, **LENS), world.astype(np.float32).astype(np.float64)


def camera_model_pixels(cam: render.RenderCamera, points: np.ndarray) -> np.ndarray:
    """posesynth.cameras.project of world points (N, 3) through ``cam``: pixels (N, 2)."""
    return project(torch.as_tensor(points)[None], cams_of([cam]))[0][0, 0].numpy()


def test_render_camera_projects_like_the_camera_model_in_out_of_the_image_and_past_the_lens_limit():
    cam, world = lens_scene()
    np.testing.assert_allclose(cam.project(world)[0], camera_model_pixels(cam, world), atol=1e-9, rtol=0)


def test_points_past_the_lens_limit_are_not_folded_back_into_the_image():
    cam, world = lens_scene()
    past = camera_model_pixels(cam, world)[-len(PAST_THE_LIMIT):]
    inside = (past >= -0.5).all(1) & (past <= [cam.width - 0.5, cam.height - 0.5]).all(1)
    assert not inside.any(), past
    np.testing.assert_allclose(past, np.array(PAST_THE_LIMIT) * 500.0 + [319.5, 239.5], atol=1e-6)  # pinhole


def triangles_at(world: np.ndarray, cam: render.RenderCamera, size: float = 0.004) -> np.ndarray:
    """A small triangle (B, 3, 3) facing ``cam`` around each world point (B, 3), ``size`` x its depth."""
    cam_pts = world @ cam.R.T + cam.t
    corners = np.array([[-1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, -1.0, 0.0]]) * size  # x right, y down
    tri = cam_pts[:, None] + corners[None] * cam_pts[:, None, 2:]
    return ((tri - cam.t) @ cam.R).astype(np.float32)


@pytest.mark.parametrize("backend", ["gl", "matplotlib"])
def test_a_renderer_draws_each_point_where_the_camera_model_projects_it(backend, request):
    """Each triangle is drawn, magnified, through the window of the camera's image plane (in the
    image or far out of it) that the camera model puts it in; its silhouette's centroid is the
    mean of its corners' camera-model pixels (a straight-edged triangle between them), to a
    tenth of an image pixel."""
    if backend == "gl":
        request.getfixturevalue("gl")
    cam, world = lens_scene()
    tri = triangles_at(world, cam)
    corners = camera_model_pixels(cam, tri.reshape(-1, 3).astype(np.float64)).reshape(-1, 3, 2)
    cell = 48
    scales = 0.5 * cell / np.ptp(corners, axis=1).max(1)  # each triangle about half a cell wide
    windows = [c.mean(0) - 0.5 * cell / s for c, s in zip(corners, scales)]  # centred on it
    cams = [cam.window(w, s, cell, cell) for w, s in zip(windows, scales)]
    renderer = render.get_renderer(np.array([[0, 1, 2]]), 3, backend, samples=0)
    for image, c, w, s in zip(renderer.render(tri, cams), corners, windows, scales):
        alpha = image[..., 3] / 255.0
        ys, xs = np.mgrid[0:cell, 0:cell]
        centroid = np.array([(alpha * xs).sum(), (alpha * ys).sum()]) / alpha.sum()
        drawn = w + (centroid + 0.5) / s  # back in the image's pixels (scale_pixels inverted)
        np.testing.assert_allclose(drawn, c.mean(0), atol=0.1)


def test_scaled_camera_matches_scaled_pixels(sample_store):
    s = render.read_store_samples(sample_store, "0")
    cam = s.cameras[0]
    small = cam.scaled(320, 240)
    a = small.project(s.keypoints_world[0])[0]
    b = render.scale_pixels(cam.project(s.keypoints_world[0])[0], 0.5, 0.5)
    np.testing.assert_allclose(a, b, atol=1e-9)


def test_windowed_camera_matches_windowed_pixels(distorted_store):
    s = render.read_store_samples(distorted_store, "0")
    cam, corner, scale = s.cameras[0], np.array([37.25, -12.5]), 2.5
    a = cam.window(corner, scale, 300, 200).project(s.keypoints_world[0])[0]
    b = render.scale_pixels(cam.project(s.keypoints_world[0])[0], scale, scale, corner)
    np.testing.assert_allclose(a, b, atol=1e-9)


def test_the_window_of_an_image_at_its_own_corner_and_scale_is_the_camera_itself(sample_store):
    cam = render.read_store_samples(sample_store, "0").cameras[0]
    np.testing.assert_allclose(cam.window(np.array([-0.5, -0.5]), 1.0, cam.width, cam.height).K, cam.K)


# ---------------------------------------------------------------------------- framing a body in its cell
def test_frame_window_is_a_square_about_the_points_with_a_margin():
    corner, side = render.frame_window(np.array([[100.0, 50.0], [140.0, 250.0]]), 640, 480, margin=0.1)
    assert side == pytest.approx(240.0)  # the longer extent, 200 px, and 10% on each side
    np.testing.assert_allclose(corner + side / 2, [120.0, 150.0])


def test_frame_window_moves_inside_the_image_where_it_fits():
    corner, side = render.frame_window(np.array([[0.0, 0.0], [200.0, 100.0]]), 640, 480, margin=0.1)
    assert side == pytest.approx(240.0)
    np.testing.assert_allclose(corner, [-0.5, -0.5])


def test_frame_window_frames_only_points_inside_the_image():
    points = np.array([[100.0, 100.0], [150.0, 200.0], [5000.0, 150.0], [120.0, -900.0], [np.nan, 0.0]])
    corner, side = render.frame_window(points, 640, 480, margin=0.0)
    assert side == pytest.approx(100.0)
    np.testing.assert_allclose(corner, [75.0, 100.0])


def test_frame_window_is_centred_on_the_image_along_an_axis_it_overfills():
    corner, side = render.frame_window(np.array([[300.0, -0.5], [340.0, 119.5]]), 640, 120, margin=0.1)
    assert side == pytest.approx(144.0)
    np.testing.assert_allclose(corner, [320.0 - 72.0, 59.5 - 72.0])


def test_frame_window_frames_the_whole_image_when_no_point_is_in_it():
    corner, side = render.frame_window(np.array([[-50.0, 10.0], [700.0, 30.0]]), 640, 480, margin=0.0)
    assert side == pytest.approx(640.0)
    np.testing.assert_allclose(corner, [-0.5, 239.5 - 320.0])


def test_cell_pixels_outside_the_camera_image_are_marked():
    cam = render.RenderCamera(K=np.eye(3), R=np.eye(3), t=np.zeros(3), width=100, height=50)
    corner = np.array([-0.5, -25.5])  # a 100 px square window, the 50 px high image across its middle
    outside = render.CellView(cam.window(corner, 1.0, 100, 100), corner, 1.0, (100, 50)).outside()
    assert outside[:25].all() and outside[75:].all() and not outside[25:75].any()


@needs_gl
def test_camera_view_cells_are_filled_by_their_bodies(sample_store, body):
    s = render.read_store_samples(sample_store, "0:6")
    cell = 128
    for im in render.render_cells(s, body, "camera", cell, keypoints=False):
        on_body = (np.abs(im - np.array(render.BACKGROUND) * 255).sum(-1) > 30) & (im != render.OUTSIDE_COLOR).any(-1)
        rows, cols = np.flatnonzero(on_body.any(1)), np.flatnonzero(on_body.any(0))
        extent = max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1
        assert 0.8 * cell <= extent < cell


@needs_gl
def test_camera_view_cells_grey_out_what_lies_outside_the_camera_image(sample_store, body):
    s = render.read_store_samples(sample_store, "0")
    cam = s.cameras[0]
    mid = float(np.median(s.pixels[0, :, 1]))
    corner = np.array([-0.5, mid - 30.5])  # a 60 px high strip of the image across the body's middle
    strip = replace(s, cameras=[cam.window(corner, 1.0, cam.width, 60)],
                    pixels=render.scale_pixels(s.pixels, 1, 1, corner),
                    pixels_noisy=render.scale_pixels(s.pixels_noisy, 1, 1, corner))
    im = render.render_cells(strip, body, "camera", 128, keypoints=False)[0]
    grey = (im == render.OUTSIDE_COLOR).all(-1)
    assert grey[:3].all() and grey[-3:].all()
    assert not grey[64].any()


def test_parse_indices():
    assert render.parse_indices("0:4", 10).tolist() == [0, 1, 2, 3]
    assert render.parse_indices("1, 5,8:10", 10).tolist() == [1, 5, 8, 9]
    assert render.parse_indices("0:10:4", 10).tolist() == [0, 4, 8]
    assert render.parse_indices("-1", 10).tolist() == [9]
    assert render.parse_indices("5:100", 8).tolist() == [5, 6, 7]
    for bad in ("10", "a", "3:1", ""):
        with pytest.raises(render.RenderError):
            render.parse_indices(bad, 10)


# ---------------------------------------------------------------------------- GL renderer
def gl_render_two(store, request, body, depth=False):
    """The first two samples of the fixture ``store``: samples, posed vertices, GL render output."""
    s = render.read_store_samples(request.getfixturevalue(store), "0:2")
    verts = posed(body, s)
    r = render.get_renderer(body.faces, body.num_vertices, "gl", samples=0)
    return s, verts, r.render(verts, s.cameras, depth=depth)


@needs_gl
@pytest.mark.parametrize("store", ["sample_store", "distorted_store"])
def test_silhouette_is_nonempty_inside_the_image_and_matches_projected_vertices(store, request, body):
    s, verts, images = gl_render_two(store, request, body)
    for img, cam, v in zip(images, s.cameras, verts):
        assert img.shape == (cam.height, cam.width, 4)
        mask = img[..., 3] > 127
        assert mask.sum() > 2000
        # The cameras keep the body in frame: nothing touches the border.
        assert not mask[0].any() and not mask[-1].any() and not mask[:, 0].any() and not mask[:, -1].any()
        # The silhouette's bounding box is the projected vertices' (extreme vertices sit on its edge).
        pix, _ = cam.project(v)
        rows, cols = np.nonzero(mask)
        assert abs(cols.min() - pix[:, 0].min()) < 1.5 and abs(cols.max() - pix[:, 0].max()) < 1.5
        assert abs(rows.min() - pix[:, 1].min()) < 1.5 and abs(rows.max() - pix[:, 1].max()) < 1.5
        # Background keeps the background colour.
        assert np.abs(img[0, 0, :3].astype(int) - np.round(255 * np.array(render.BACKGROUND))).max() <= 1


@needs_gl
@pytest.mark.parametrize("store", ["sample_store", "distorted_store"])
def test_vertices_facing_the_camera_land_on_body_pixels_at_their_depth(store, request, body):
    s, verts, (images, depths) = gl_render_two(store, request, body, depth=True)
    theirs, cam_pts = project(torch.as_tensor(verts, dtype=torch.float64), cams_of(s.cameras))
    faces = body.faces
    for b, cam in enumerate(s.cameras):
        chosen = facing_vertices(body, verts[b], cam)[::4]
        assert len(chosen) > 150
        hidden = occluded(verts[b], faces, -cam.R.T @ cam.t, chosen)
        assert (~hidden).sum() > 100
        pix, z = theirs[b, 0, chosen].numpy(), cam_pts[b, 0, chosen, 2].numpy()
        mask, depth = images[b][..., 3] > 127, depths[b]
        H, W = mask.shape
        for u, v in pix:
            iu, iv = int(round(u)), int(round(v))
            ys, xs = np.mgrid[max(iv - 2, 0):min(iv + 3, H), max(iu - 2, 0):min(iu + 3, W)]
            near = (xs - u) ** 2 + (ys - v) ** 2 <= 4.0  # within 2 px
            assert (mask[ys, xs] & near).any(), f"vertex at ({u:.1f}, {v:.1f}) has no body pixel within 2 px"
        # The depth buffer at the vertex's pixel: its own depth when nothing hides it (within
        # 1 cm: the surface slopes across the pixel), a nearer surface when something does.
        err = depth[np.round(pix[:, 1]).astype(int), np.round(pix[:, 0]).astype(int)] - z
        assert (np.abs(err[~hidden]) < 0.01).mean() > 0.97, (np.abs(err[~hidden]) < 0.01).mean()
        if hidden.sum() > 20:
            assert (err[hidden] < -0.003).mean() > 0.9, (err[hidden] < -0.003).mean()


@needs_gl
def test_canonical_views_put_the_body_upright_and_its_left_on_the_right(body):
    v = body(torch.zeros(1, 3), torch.zeros(1, 69)).vertices.detach().numpy()[0]
    left_hand = v[:, 0].argmax()  # +x is the body's left
    head = v[:, 1].argmax()
    r = render.get_renderer(body.faces, body.num_vertices, "gl")
    for view in ("front", "side", "top"):
        cam = render.canonical_camera(v, view, 256)
        img = r.render(v[None], [cam])[0]
        mask = img[..., 3] > 127
        assert 2000 < mask.sum() and not mask[0].any() and not mask[-1].any()
        pix, _ = cam.project(v[[left_hand, head]])
        if view == "front":
            assert pix[0, 0] > 160 and pix[1, 1] < 60  # left hand on the right, head at the top
        if view == "side":
            assert abs(pix[0, 0] - 127.5) < 30 and pix[1, 1] < 60
        if view == "top":
            assert pix[0, 0] > 160


@needs_gl
def test_msaa_and_tiled_batches_give_the_same_pictures_as_single_renders(sample_store, body):
    s = render.read_store_samples(sample_store, "0:6")
    verts = posed(body, s)
    r = render.get_renderer(body.faces, body.num_vertices, "gl", samples=4)
    colors = np.array(render.PALETTE[:6])
    batch = r.render(verts, s.cameras, colors)
    for b in (0, 5):
        one = r.render(verts[b:b + 1], s.cameras[b:b + 1], colors[b])[0]
        diff = np.abs(one.astype(int) - batch[b].astype(int)).max(-1)
        # Tiles shift the viewport by whole pixels; rounding can flip a few edge samples, no more.
        assert (diff > 2).sum() <= 10 and diff.max() <= 80


# ---------------------------------------------------------------------------- fallback
def test_matplotlib_fallback_matches_the_gl_silhouette(sample_store, body):
    s = render.read_store_samples(sample_store, "0:2")
    verts = posed(body, s)
    fallback = render.get_renderer(body.faces, body.num_vertices, "matplotlib").render(verts, s.cameras)
    for img, cam in zip(fallback, s.cameras):
        assert img.shape == (cam.height, cam.width, 4) and (img[..., 3] > 127).sum() > 2000
    ok, why = render.gl_available()
    if not ok:
        pytest.skip(f"no GL context to compare the fallback with: {why}")
    gl = render.get_renderer(body.faces, body.num_vertices, "gl").render(verts, s.cameras)
    for a, b in zip(gl, fallback):
        ma, mb = a[..., 3] > 127, b[..., 3] > 127
        iou = (ma & mb).sum() / (ma | mb).sum()
        assert iou > 0.9, iou
        both = ma & mb
        assert np.abs(a[both][:, :3].astype(int) - b[both][:, :3].astype(int)).mean() < 25  # similar shading


def test_no_gl_context_falls_back_with_one_notice(monkeypatch, capsys, body):
    from posesynth.render import backend

    monkeypatch.setattr(backend, "gl_available", lambda: (False, "test: EGL is missing"))
    monkeypatch.setattr(backend, "_NOTICE_SHOWN", False)
    r1 = render.get_renderer(body.faces, body.num_vertices, "auto")
    r2 = render.get_renderer(body.faces, body.num_vertices, "auto")
    assert r1.name == r2.name == "matplotlib"
    err = capsys.readouterr().err
    assert err.count("matplotlib fallback") == 1 and "test: EGL is missing" in err
    with pytest.raises(render.RenderError, match="EGL is missing"):
        render.get_renderer(body.faces, body.num_vertices, "gl")


# ---------------------------------------------------------------------------- overlays
def test_keypoint_markers_are_centred_on_their_pixels_and_hollow_when_invisible():
    img = np.full((60, 80, 3), 255, np.uint8)
    pts = np.array([[20.3, 30.7], [55.0, 12.25]])
    out = render.draw_keypoints(img, pts, visible=np.array([3, 1]), color=(0, 0, 255), radius=5, width=1)
    ink = 255 - out[..., 0].astype(float)  # red channel drops where blue ink is
    for (u, v), filled in zip(pts, (True, False)):
        ys, xs = np.mgrid[0:60, 0:80]
        near = (xs - u) ** 2 + (ys - v) ** 2 <= 7 ** 2
        w = ink * near
        assert abs((w * xs).sum() / w.sum() - u) < 0.25 and abs((w * ys).sum() / w.sum() - v) < 0.25
        centre = out[int(round(v)), int(round(u))]
        assert (centre[2] > 200 and centre[0] < 60) if filled else (centre == 255).all()


@needs_gl
def test_overlaid_keypoints_are_drawn_where_the_camera_projects_them(sample_store, body):
    s = render.read_store_samples(sample_store, "0:2")
    cell = 400
    bare = render.render_cells(s, body, "camera", cell, keypoints=False)
    drawn = render.render_cells(s, body, "camera", cell)
    cell_cameras = [v.camera for v in render.cell_views(s, posed(body, s), "camera", cell)]
    theirs, _ = project(torch.as_tensor(s.keypoints_world), cams_of(cell_cameras))
    for b in range(len(s)):
        pix = theirs[b, 0].numpy()
        changed = np.abs(drawn[b].astype(int) - bare[b].astype(int)).sum(-1) > 30
        radius = max(2.0, cell / 160)
        gaps = np.linalg.norm(pix[:, None] - pix[None], axis=-1) + np.eye(len(pix)) * 1e9
        checked = 0
        for j, (u, v) in enumerate(pix):
            if s.visible[b, j] != 3 or gaps[j].min() < 2 * radius + 2:  # hollow, or overlapping a neighbour
                continue
            checked += 1
            px = drawn[b][int(round(v)), int(round(u))].astype(int)
            assert changed[int(round(v)), int(round(u))]
            # Filled in the clean colour at the projected point.
            assert np.abs(px - render.CLEAN_COLOR).max() < 60, (j, px)
        assert checked >= 10
        # Noisy 2D is drawn too, in its own colour.
        red = (drawn[b][..., 0] > 180) & (drawn[b][..., 1] < 90) & (drawn[b][..., 2] < 90)
        assert red.sum() > 20


# ---------------------------------------------------------------------------- grids and the command
def test_render_command_draws_a_grid_of_a_sample_store(sample_store, tmp_path):
    out = tmp_path / "grid.png"
    res = CliRunner().invoke(main, ["render", str(sample_store), "--index", "0:6", "--out", str(out),
                                    "--size", "160", "--cols", "3"])
    assert res.exit_code == 0, res.output
    img = np.asarray(Image.open(out))
    assert img.shape[1:] == (3 * 160 + 2 * 4, 3) and img.shape[0] > 2 * 160 + 4  # the legend below
    # Every cell has a body in it (colours away from the grey background and white gaps).
    for k in range(6):
        r, c = divmod(k, 3)
        cellimg = img[r * 164:r * 164 + 160, c * 164:c * 164 + 160].astype(int)
        assert (np.abs(cellimg - cellimg[-1, -1]).sum(-1) > 40).sum() > 300


def test_the_legend_explains_clean_noisy_and_hidden_keypoints(sample_store, tmp_path, body, shape_basis):
    def kinds(samples, view):
        return [(e.kind, e.marker) for e in render.legend_entries(samples, view)]

    noisy = render.read_store_samples(sample_store, "0:2")
    clean = render.read_store_samples(make_sample_store(tmp_path / "clean.zarr", body, shape_basis, n=2, noisy=False))
    assert kinds(noisy, "camera") == [("bone", render.CLEAN), ("bone", render.NOISY), ("ring", render.CLEAN),
                                      ("outside", render.CLEAN)]
    assert kinds(clean, "camera") == [("bone", render.CLEAN), ("ring", render.CLEAN), ("outside", render.CLEAN)]
    assert kinds(noisy, "front") == [("bone", render.CLEAN)]
    assert render.legend_entries(noisy, "camera")[0].text == "smpl24 2D keypoints"


LEGEND = [render.LegendEntry("clean", "bone"), render.LegendEntry("noisy", "bone", render.NOISY),
          render.LegendEntry("hidden", "ring"), render.LegendEntry("outside", "outside")]


def test_the_legend_is_drawn_under_the_cells_in_the_markers_own_colours():
    images = [np.full((64, 64, 3), 237, np.uint8)] * 2
    grid = render.make_grid(images, 64, legend=LEGEND)
    _, _, width, height = render.grid_shape(2, 64)
    np.testing.assert_array_equal(grid[:height], render.make_grid(images, 64))
    r, g, b = grid[height:].astype(int).transpose(2, 0, 1)
    assert grid.shape[1] == width
    assert ((b - r > 100) & (b - g > 50)).sum() >= 4  # blue: clean
    assert ((r - g > 100) & (r - b > 100)).sum() >= 4  # red: noisy
    assert (grid[height:] == render.OUTSIDE_COLOR).all(-1).sum() >= 4


def test_the_legend_wraps_onto_more_rows_in_a_narrow_grid():
    assert len(render.legend_strip(LEGEND, 132, 64)) > len(render.legend_strip(LEGEND, 2000, 64))


def test_a_legend_text_too_long_for_its_row_is_wrapped():
    long = [render.LegendEntry("hidden: out of frame or self-occluded", "ring")]
    assert len(render.legend_strip(long, 120, 64)) > len(render.legend_strip(long, 2000, 64))


def test_render_shows_a_progress_bar_on_a_terminal_only(sample_store, tmp_path, capsys):
    render.render_store(sample_store, tmp_path / "a.png", "0:6", size=32, progress=True)
    err = capsys.readouterr().err
    assert "rendering" in err and "6/6" in err
    res = CliRunner().invoke(main, ["render", str(sample_store), "--index", "0:6", "--size", "32",
                                    "--out", str(tmp_path / "b.png")])
    assert res.exit_code == 0 and "rendering" not in res.output


def test_render_command_on_a_training_store_uses_canonical_views(tmp_path, body, shape_basis):
    store = make_training_store(tmp_path / "train.zarr", shape_basis, body)
    for view in ("front", "top"):
        out = tmp_path / f"{view}.png"
        res = CliRunner().invoke(main, ["render", str(store), "--index", "0,2,3", "--view", view,
                                        "--out", str(out), "--size", "128"])
        assert res.exit_code == 0, res.output
        img = np.asarray(Image.open(out))
        assert img.shape[1:] == (2 * 128 + 4, 3) and img.shape[0] > 2 * 128 + 4
    res = CliRunner().invoke(main, ["render", str(store), "--view", "camera", "--out", str(tmp_path / "x.png")])
    assert res.exit_code != 0 and "no cameras" in res.output
    res = CliRunner().invoke(main, ["render", str(store), "--index", "9", "--out", str(tmp_path / "x.png")])
    assert res.exit_code != 0 and "out of range" in res.output


def test_render_names_a_damaged_store_before_drawing(tmp_path, tmp_path_factory):
    store = damaged_sample_store(tmp_path, tmp_path_factory, "metadata")
    assert f"error: {store}: damaged store: the metadata of smpl/betas cannot be read" in \
        error_line(["render", store, "--index", "0:2", "--out", tmp_path / "g.png"])


# ---------------------------------------------------------------------------- from a checkpoint
SMALL_BLOCKS = "[sample]\nblock_size = 8\nchunk_size = 8\nshard_size = 8\nkeypoint_sets = [\"smpl24\"]\n"


def tiny_checkpoint(path, body_model):
    """An untrained tiny GAN checkpoint at ``path`` with two labels (its poses are the mean pose
    plus noise) and joint limits that allow any rotation, made with the body model of identity
    ``body_model``."""
    from posesynth.gan.checkpoint import save_checkpoint
    from posesynth.gan.networks import Generator
    from posesynth.gan.recipe import load_train_recipe
    from posesynth.plausibility import JointLimits

    recipe = load_train_recipe(None, ("model.latent=8", "model.width=32", "model.blocks=1", "model.label_embedding=4"))
    eye6d = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]).repeat(24)
    gen = Generator(recipe.model, 2, eye6d)
    torch.nn.init.normal_(gen.out[1].weight, std=0.05)
    limits = JointLimits(torch.full((24, 3), -4.0), torch.full((24, 3), 4.0))  # an axis-angle component is <= pi
    save_checkpoint(path, gen, recipe.to_dict(), "content", ("kick", "raise"), body_model, 0, joint_limits=limits)
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, body):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", body.identity)


def test_checkpoint_samples_are_the_head_of_the_store_sample_would_write(checkpoint, tmp_path, body):
    import zarr

    from posesynth.sample_recipe import resolve_sample_recipe
    from posesynth.sampling import sample_to_store

    recipe = tmp_path / "small.toml"
    recipe.write_text(SMALL_BLOCKS)
    s = render.sample_checkpoint(checkpoint, n=11, seed=3, body=body, recipe=recipe, label="raise")
    store = tmp_path / "s.zarr"
    sample_to_store(checkpoint, store, 16, seed=3, recipe=resolve_sample_recipe(recipe, ['sample.label="raise"']))
    g = zarr.open_group(str(store), mode="r")
    np.testing.assert_array_equal(s.body_pose, g["smpl/body_pose"][:11])
    np.testing.assert_array_equal(s.pixels, g["keypoints/smpl24/pixels"][:11, 0])
    np.testing.assert_array_equal(np.stack([c.K for c in s.cameras]), g["camera/K"][:11, 0])
    assert s.captions[0] == "#0 raise" and (s.visible == g["keypoints/smpl24/visible"][:11, 0]).all()


def test_a_checkpoint_of_another_body_model_is_refused_as_sample_refuses_it(tmp_path, body):
    from posesynth.sampling import SampleError, sample_to_store

    path = tiny_checkpoint(tmp_path / "other.pt", "other.npz:0123456789abcdef")
    with pytest.raises(render.RenderError) as rendering:
        render.sample_checkpoint(path, n=1, body=body)
    with pytest.raises(SampleError) as sampling:
        sample_to_store(path, tmp_path / "s.zarr", 1)
    assert str(rendering.value) == str(sampling.value)
    assert f"made with body model other.npz:0123456789abcdef, but sampling uses {body.identity}" in str(sampling.value)


def test_render_command_from_a_checkpoint(checkpoint, tmp_path):
    recipe = tmp_path / "small.toml"
    recipe.write_text(SMALL_BLOCKS)
    out = tmp_path / "ckpt.png"
    args = ["render", "--checkpoint", str(checkpoint), "--recipe", str(recipe), "--size", "96", "--out", str(out)]
    res = CliRunner().invoke(main, args + ["--n", "4", "--label", "kick", "--set", "coco17"])
    assert res.exit_code == 0, res.output
    img = np.asarray(Image.open(out))
    assert img.shape[1:] == (2 * 96 + 4, 3) and img.shape[0] > 2 * 96 + 4
    res = CliRunner().invoke(main, args + ["--label", "fly", "--overwrite"])
    assert res.exit_code != 0 and "no label 'fly'" in res.output
    res = CliRunner().invoke(main, ["render", str(out.parent), "--checkpoint", str(checkpoint), "--out", str(out)])
    assert res.exit_code != 0 and "either a STORE or --checkpoint" in res.output
