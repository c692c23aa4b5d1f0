"""Virtual cameras: conventions, projection, distortion, sampling, presets."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import BANDAI_DASH, KICK_LEFT
from posesynth.cameras import (
    CAMERA_PRESETS,
    CameraDistribution,
    Cameras,
    backproject,
    distort,
    load_camera_preset,
    look_at_rotation,
    project,
    sample_cameras,
    undistort,
)
from posesynth.keypoint_sets import compute_keypoints
from posesynth.kinematics import forward_kinematics
from posesynth.mocap import read_motion
from posesynth.retarget import retarget
from posesynth.rig_map import detect_rig
from posesynth.visibility import in_frame

DTYPES = [torch.float32, torch.float64]


def one_camera(K, R, t, dist=(0.0, 0.0, 0.0, 0.0), size=(100, 80), dtype=torch.float64) -> Cameras:
    f = lambda x: torch.as_tensor(x, dtype=dtype)[None, None]  # noqa: E731
    return Cameras(f(K), f(R), f(t), f(dist), torch.tensor(size, dtype=torch.int32)[None, None])


def fixed(**kw) -> CameraDistribution:
    base = dict(image_size=(1000, 800), focal_px=1000.0, distance_m=5.0, azimuth_deg=0.0,
                allow_truncation=True)
    base.update(kw)
    return CameraDistribution(**base)


def symmetric_body(B=1, dtype=torch.float64):
    """Joints whose bounding box is centred on the origin."""
    j = torch.zeros(B, 24, 3, dtype=dtype)
    j[:, 0] = torch.tensor([-0.2, -0.9, -0.1])
    j[:, 1] = torch.tensor([0.2, 0.9, 0.1])
    return j


@pytest.fixture(scope="module")
def real_poses(body):
    """(N, 24, 3) joints, global rotations and betas of retargeted real clips (every 2nd frame)."""
    template, dirs = body.joint_shape_basis()
    sb = (template.double().numpy(), dirs.double().numpy())
    out = {"joints": [], "G": [], "betas": []}
    for path in (KICK_LEFT, BANDAI_DASH):
        motion = read_motion(path)
        bound = detect_rig(motion.joint_names).bind(motion.joint_names)
        frames, mask = bound.frame_rotations(motion.rotations)
        r = retarget(bound.targets(motion.positions), *sb, frames, mask)
        local = torch.cat([r.global_orient[:, None], r.body_pose], 1)[::2]
        betas = r.betas.expand(local.shape[0], -1)
        G, joints = forward_kinematics(local, body.rest_joints(betas.double()).double())
        out["joints"].append((joints + r.transl[::2, None]).float())
        out["G"].append(G.float())
        out["betas"].append(betas.float())
    return {k: torch.cat(v) for k, v in out.items()}


# ---------------------------------------------------------------------------- conventions
@pytest.mark.parametrize("dtype", DTYPES)
def test_identity_camera_projects_by_hand(dtype):
    cams = one_camera([[100, 0, 50], [0, 120, 40], [0, 0, 1]], torch.eye(3), [0, 0, 0], dtype=dtype)
    pts = torch.tensor([[[0.1, -0.2, 2.0], [0.0, 0.0, 3.0], [-1.0, 0.5, 4.0]]], dtype=dtype)
    pixels, cam = project(pts, cams)
    assert pixels.shape == (1, 1, 3, 2) and cam.shape == (1, 1, 3, 3)
    assert pixels.dtype == dtype
    want = torch.tensor([[55.0, 28.0], [50.0, 40.0], [25.0, 55.0]], dtype=dtype)
    torch.testing.assert_close(pixels[0, 0], want)
    torch.testing.assert_close(cam[0, 0], pts[0])


def test_camera_in_front_looking_back_by_hand():
    """A camera on +z looking at the origin: world +x is image right, world +y is image up."""
    dist = fixed(elevation_deg=0.0, roll_deg=0.0)
    cams = sample_cameras(dist, symmetric_body(), torch.Generator().manual_seed(0))
    torch.testing.assert_close(cams.R[0, 0], torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64)))
    torch.testing.assert_close(cams.t[0, 0], torch.tensor([0.0, 0.0, 5.0], dtype=torch.float64))
    torch.testing.assert_close(cams.centres[0, 0], torch.tensor([0.0, 0.0, 5.0], dtype=torch.float64))
    pixels, cam = project(torch.tensor([[[0.5, 1.0, 0.0]]], dtype=torch.float64), cams)
    # x_cam = (0.5, -1, 5) -> u = 1000 * 0.1 + 499.5, v = 1000 * (-0.2) + 399.5
    torch.testing.assert_close(pixels[0, 0, 0], torch.tensor([599.5, 199.5], dtype=torch.float64))
    torch.testing.assert_close(cam[0, 0, 0], torch.tensor([0.5, -1.0, 5.0], dtype=torch.float64))


def test_principal_point_offsets_move_the_optical_axis():
    cams = one_camera([[800, 0, 317.25], [0, 800, 211.5], [0, 0, 1]], torch.eye(3), [0.1, -0.2, 3.0])
    pts = torch.tensor([[[-0.1, 0.2, 0.0], [0.9, 0.2, 2.0]]], dtype=torch.float64)  # on the axis; off it
    pixels, _ = project(pts, cams)
    torch.testing.assert_close(pixels[0, 0, 0], torch.tensor([317.25, 211.5], dtype=torch.float64))
    torch.testing.assert_close(pixels[0, 0, 1], torch.tensor([317.25 + 800 * 1.0 / 5.0, 211.5], dtype=torch.float64))


def test_azimuth_elevation_and_roll_conventions():
    body = symmetric_body()
    left = sample_cameras(fixed(azimuth_deg=90.0), body, torch.Generator().manual_seed(0))
    torch.testing.assert_close(left.centres[0, 0], torch.tensor([5.0, 0.0, 0.0], dtype=torch.float64))
    behind = sample_cameras(fixed(azimuth_deg=180.0), body, torch.Generator().manual_seed(0))
    torch.testing.assert_close(behind.centres[0, 0], torch.tensor([0.0, 0.0, -5.0], dtype=torch.float64))
    above = sample_cameras(fixed(elevation_deg=30.0), body, torch.Generator().manual_seed(0))
    c = above.centres[0, 0]
    assert c[1] == pytest.approx(5 * math.sin(math.radians(30)))
    pixels, cam = project(torch.zeros(1, 1, 3, dtype=torch.float64), above)  # the look-at point
    torch.testing.assert_close(pixels[0, 0, 0], torch.tensor([499.5, 399.5], dtype=torch.float64))
    # rolled +10 degrees: a point right of centre moves down the image (clockwise)
    rolled = sample_cameras(fixed(roll_deg=10.0), body, torch.Generator().manual_seed(0))
    pixels, _ = project(torch.tensor([[[0.5, 0.0, 0.0]]], dtype=torch.float64), rolled)
    assert pixels[0, 0, 0, 1] > 399.5 + 5
    assert pixels[0, 0, 0, 0] > 499.5


@pytest.mark.parametrize("dtype", DTYPES)
def test_rotations_are_orthonormal_with_det_one(dtype):
    dist = fixed(azimuth_deg=(-180.0, 180.0), elevation_deg=(-80.0, 80.0), roll_deg=(-180.0, 180.0), views=3)
    cams = sample_cameras(dist, symmetric_body(200, dtype), torch.Generator().manual_seed(1))
    R = cams.R.double()
    eye = torch.eye(3, dtype=torch.float64).expand_as(R)
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(R @ R.transpose(-1, -2), eye, atol=tol, rtol=0)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(R.shape[:2], dtype=torch.float64), atol=tol, rtol=0)
    assert cams.R.dtype == dtype and cams.image_size.dtype == torch.int32
    forward = look_at_rotation(torch.tensor([0.3, -0.2, 1.0]), torch.tensor(0.0))[2]
    torch.testing.assert_close(forward, torch.nn.functional.normalize(torch.tensor([0.3, -0.2, 1.0]), dim=0))


# ---------------------------------------------------------------------------- round trips
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), distorted=st.booleans())
def test_round_trip_3d_to_2d_to_3d(seed, distorted):
    g = torch.Generator().manual_seed(seed)
    dist = fixed(azimuth_deg=(-180.0, 180.0), elevation_deg=(-60.0, 60.0), roll_deg=(-30.0, 30.0),
                 focal_px=(300.0, 3000.0), principal_jitter_px=50.0, lookat_jitter_m=1.0, views=2,
                 distortion={"k1": (-0.2, 0.1), "k2": (0.0, 0.1), "p1": (-0.01, 0.01), "p2": (-0.01, 0.01)}
                 if distorted else None)
    body = torch.rand((3, 24, 3), generator=g, dtype=torch.float64) * 2 - 1
    cams = sample_cameras(dist, body, g)
    pts = torch.rand((3, 10, 3), generator=g, dtype=torch.float64) - 0.5  # within the look-at jitter
    pixels, cam = project(pts, cams)
    back = backproject(pixels, cam[..., 2], cams)
    want = pts.unsqueeze(1).expand_as(back)
    if distorted:  # undistortion is defined where the lens maps into the image
        keep = in_frame(pixels, cams.image_size, cam[..., 2])
        back, want = back[keep], want[keep]
    torch.testing.assert_close(back, want, atol=1e-7, rtol=0)


# ---------------------------------------------------------------------------- distortion
def opencv_distort(x: float, y: float, k1: float, k2: float, p1: float, p2: float) -> tuple[float, float]:
    """cv::projectPoints' distortion, written out from OpenCV's documentation (k3 = 0)."""
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 * r2
    return (x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x),
            y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y)


@pytest.mark.parametrize("dtype", DTYPES)
def test_distortion_matches_opencvs_formula(dtype):
    rng = np.random.default_rng(0)
    pts = rng.uniform(-1, 1, size=(50, 3)) * [1.0, 1.0, 0.5] + [0, 0, 4.0]
    K = np.array([[1145.0, 0, 512.5], [0, 1144.0, 515.0], [0, 0, 1]])
    coeffs = (-0.207, 0.248, -0.00098, -0.0014)
    cams = one_camera(K, torch.eye(3), [0, 0, 0], coeffs, size=(1000, 1000), dtype=dtype)
    pixels, _ = project(torch.as_tensor(pts, dtype=dtype)[None], cams)
    want = []
    for X, Y, Z in pts:
        xd, yd = opencv_distort(X / Z, Y / Z, *coeffs)
        want.append((K[0, 0] * xd + K[0, 2], K[1, 1] * yd + K[1, 2]))
    tol = 1e-3 if dtype == torch.float32 else 1e-9
    np.testing.assert_allclose(pixels[0, 0].double().numpy(), np.array(want), atol=tol, rtol=0)


def test_distortion_matches_cv2_project_points():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(1)
    pts = rng.uniform(-1, 1, size=(20, 3)) + [0, 0, 5.0]
    K = np.array([[1000.0, 0, 640.0], [0, 990.0, 360.0], [0, 0, 1]])
    coeffs = np.array([-0.1, 0.05, 0.001, -0.002])
    rvec, tvec = np.array([0.1, -0.2, 0.05]), np.array([0.2, -0.1, 0.3])
    want, _ = cv2.projectPoints(pts, rvec, tvec, K, coeffs)
    R = cv2.Rodrigues(rvec)[0]
    cams = one_camera(K, R, tvec, coeffs, size=(1280, 720))
    pixels, _ = project(torch.as_tensor(pts)[None], cams)
    np.testing.assert_allclose(pixels[0, 0].numpy(), want[:, 0], atol=1e-6)


def test_undistort_inverts_distort():
    xn = torch.rand(100, 2, dtype=torch.float64) - 0.5
    coeffs = torch.tensor([-0.2, 0.25, 0.001, -0.002], dtype=torch.float64)
    torch.testing.assert_close(undistort(distort(xn, coeffs), coeffs), xn, atol=1e-12, rtol=0)


def test_points_far_outside_the_view_do_not_fold_back_into_the_image():
    """Strong barrel distortion maps very oblique rays back toward the centre; project must not."""
    cams = one_camera([[500, 0, 499.5], [0, 500, 499.5], [0, 0, 1]], torch.eye(3), [0, 0, 0],
                      (-0.3, 0.0, 0.0, 0.0), size=(1000, 1000))
    pts = torch.tensor([[[3.0, 0.0, 1.0], [0.5, 0.2, 1.0]]], dtype=torch.float64)  # 72 deg off axis; inside
    pixels, cam = project(pts, cams)
    assert not in_frame(pixels, cams.image_size, cam[..., 2])[0, 0, 0]
    assert in_frame(pixels, cams.image_size, cam[..., 2])[0, 0, 1]


# ---------------------------------------------------------------------------- sampling
@pytest.mark.parametrize("name", [n for n in CAMERA_PRESETS if n != "in_the_wild"])
def test_sampled_cameras_keep_the_whole_body_in_frame(name, real_poses, body):
    dist = load_camera_preset(name)
    assert not dist.allow_truncation
    kp = compute_keypoints(["smpl24", "h36m17", "coco17"], body, real_poses["G"], real_poses["joints"],
                           real_poses["betas"])
    points = torch.cat(list(kp.values()), dim=1)
    for seed in range(3):
        cams = sample_cameras(dist, real_poses["joints"], torch.Generator().manual_seed(seed),
                              keypoints_world=points)
        pixels, cam = project(points, cams)
        assert in_frame(pixels, cams.image_size, cam[..., 2]).all(), name
        # the joints alone (margins for the body's extent) are in frame without being asked
        cams = sample_cameras(dist, real_poses["joints"], torch.Generator().manual_seed(seed))
        pixels, cam = project(real_poses["joints"], cams)
        assert in_frame(pixels, cams.image_size, cam[..., 2]).all(), name


def test_cameras_too_close_are_moved_back_just_enough(real_poses):
    dist = CameraDistribution(image_size=(1000, 1000), focal_px=1000.0, distance_m=0.5, elevation_deg=(0.0, 30.0))
    joints = real_poses["joints"]
    cams = sample_cameras(dist, joints, torch.Generator().manual_seed(0))
    pixels, cam = project(joints, cams)
    assert in_frame(pixels, cams.image_size, cam[..., 2]).all()
    extent = (pixels.amax(2) - pixels.amin(2)).amax(-1)  # (B, V) larger side of the joints' box
    assert extent.min() > 0.4 * 1000  # the body fills much of the frame
    assert (cams.centres - joints.mean(1, keepdim=True)).norm(dim=-1).min() > 1.0


def test_the_fitted_distance_is_the_closed_form_one():
    """A vertical line of joints seen from the front: the top joint's 0.12 m margin touches the border."""
    joints = torch.zeros(1, 24, 3, dtype=torch.float64)
    joints[0, :, 1] = torch.linspace(-0.9, 0.9, 24, dtype=torch.float64)
    joints[0, [12, 15], 1] = 0.0  # neck and head together: the head's margin is its floor, 0.2 m
    dist = CameraDistribution(image_size=(1000, 800), focal_px=1000.0, distance_m=0.5, azimuth_deg=0.0)
    cams = sample_cameras(dist, joints, torch.Generator().manual_seed(0))
    room = (399.5 + 0.5 - 1e-3) / 1000  # normalised half-height left for the margin sphere
    assert float(cams.centres[0, 0, 2]) == pytest.approx((0.9 + 0.12) / room + 0.12, rel=1e-12)


def test_in_the_wild_preset_truncates_some_bodies(real_poses):
    dist = load_camera_preset("in_the_wild")
    cams = sample_cameras(dist, real_poses["joints"], torch.Generator().manual_seed(0))
    pixels, cam = project(real_poses["joints"], cams)
    frac = in_frame(pixels, cams.image_size, cam[..., 2]).all(-1).double().mean()
    assert 0.3 < float(frac) < 1.0


def test_presets_have_their_documented_properties():
    h36m = load_camera_preset("h36m")
    assert h36m.image_size == (1000, 1000)
    assert h36m.focal_px[0] <= 1145 <= h36m.focal_px[1] and h36m.focal_px[1] - h36m.focal_px[0] <= 10
    assert h36m.distance_m == (4.0, 6.0)
    assert -5 <= h36m.elevation_deg[0] and h36m.elevation_deg[1] <= 20  # near eye level
    assert h36m.distortion is not None and h36m.distortion["k1"][1] < 0  # H36M's barrel distortion
    hp = load_camera_preset("mpi_inf_3dhp")
    span = lambda r: r[1] - r[0]  # noqa: E731
    assert span(hp.elevation_deg) > 3 * span(h36m.elevation_deg) and hp.elevation_deg[1] >= 45
    assert span(hp.focal_px) / hp.image_size[0] > 10 * span(h36m.focal_px) / h36m.image_size[0]
    wild = load_camera_preset("in_the_wild")
    assert wild.fov_deg is not None and span(wild.fov_deg) >= 40
    assert wild.allow_truncation and span(wild.roll_deg) >= 20
    surv = load_camera_preset("surveillance")
    assert surv.elevation_deg[0] >= 15 and surv.fov_deg[1] <= 45  # high, long lens
    assert not surv.allow_truncation and surv.distance_m[0] >= 5
    for name in CAMERA_PRESETS:
        d = load_camera_preset(name)
        assert CameraDistribution.from_dict(d.to_dict()) == d


def test_fov_is_converted_to_focal_length():
    dist = fixed(focal_px=None, fov_deg=90.0)
    cams = sample_cameras(dist, symmetric_body(), torch.Generator().manual_seed(0))
    assert float(cams.K[0, 0, 0, 0]) == pytest.approx(500.0)


# ---------------------------------------------------------------------------- determinism
def test_same_seed_same_cameras_and_blocks_are_independent():
    dist = load_camera_preset("h36m")
    body = symmetric_body(128, torch.float32) + torch.linspace(0, 1, 128)[:, None, None]
    dist2 = CameraDistribution.from_dict({**dist.to_dict(), "views": 2})
    a = sample_cameras(dist2, body, torch.Generator().manual_seed(7))
    b = sample_cameras(dist2, body, torch.Generator().manual_seed(7))
    for f in ("K", "R", "t", "distortion", "image_size"):
        assert torch.equal(getattr(a, f), getattr(b, f))
    # the caller's blocks: block k draws from its own generator, in any order, on any batch split
    g1, g2 = torch.Generator().manual_seed(101), torch.Generator().manual_seed(102)
    second = sample_cameras(dist2, body[64:], g2)
    first = sample_cameras(dist2, body[:64], g1)
    again = sample_cameras(dist2, body[:64], torch.Generator().manual_seed(101))
    assert torch.equal(first.R, again.R) and torch.equal(first.K, again.K) and torch.equal(first.t, again.t)
    assert not torch.equal(first.R, second.R)
    # exactly B * V * 14 float64 uniforms were drawn, whatever the distribution
    ref = torch.Generator().manual_seed(101)
    torch.rand(64 * 2 * 14, generator=ref, dtype=torch.float64)
    assert torch.equal(g1.get_state(), ref.get_state())
    assert a.K.shape == (128, 2, 3, 3)


def test_cameras_do_not_depend_on_the_joints_dtype():
    dist = load_camera_preset("surveillance")
    body = symmetric_body(16, torch.float64)
    a = sample_cameras(dist, body, torch.Generator().manual_seed(3))
    b = sample_cameras(dist, body.float(), torch.Generator().manual_seed(3))
    torch.testing.assert_close(a.R.float(), b.R, rtol=0, atol=0)
    torch.testing.assert_close(a.t.float(), b.t, rtol=0, atol=0)


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize("table, key", [
    ({"image_size": [10, 10], "distance_m": 1, "focal_px": 5, "colour": 1}, "colour"),
    ({"image_size": [10, 10], "distance_m": [3, 2], "focal_px": 5}, "distance_m"),
    ({"image_size": [10, 10], "distance_m": 1, "focal_px": [5, "a"]}, "focal_px"),
    ({"image_size": [10, 10], "distance_m": 1, "focal_px": 5, "elevation_deg": [0, 90]}, "elevation_deg"),
    ({"image_size": [10, 10], "distance_m": 1, "fov_deg": [10, 200]}, "fov_deg"),
    ({"image_size": [10, 10], "distance_m": 1, "focal_px": 5, "fov_deg": 40}, "focal_px"),
    ({"image_size": [10], "distance_m": 1, "focal_px": 5}, "image_size"),
    ({"image_size": [10, 10], "focal_px": 5}, "distance_m"),
    ({"image_size": [10, 10], "distance_m": 1, "focal_px": 5, "views": 0}, "views"),
    ({"image_size": [10, 10], "distance_m": 1, "focal_px": 5, "distortion": {"k3": [0, 1]}}, "k3"),
    ({"image_size": [10, 10], "distance_m": 1, "focal_px": 5, "distortion": {"k1": [1, 0]}}, "distortion.k1"),
    ({"image_size": [10, 10], "distance_m": 1, "focal_px": 5, "lookat_jitter_m": -1}, "lookat_jitter_m"),
])
def test_bad_camera_tables_name_the_key(table, key):
    with pytest.raises(ValueError, match=key):
        CameraDistribution.from_dict(table)


def test_bad_shapes_name_the_argument(tmp_path):
    cams = one_camera(torch.eye(3), torch.eye(3), [0, 0, 1])
    with pytest.raises(ValueError, match="points_world"):
        project(torch.zeros(1, 3, dtype=torch.float64), cams)
    with pytest.raises(ValueError, match="depth"):
        backproject(torch.zeros(1, 1, 4, 2), torch.zeros(1, 1, 3), cams)
    with pytest.raises(ValueError, match="joints_world"):
        sample_cameras(fixed(), torch.zeros(2, 24), torch.Generator())
    with pytest.raises(ValueError, match="preset"):
        load_camera_preset("nowhere")
    bad = tmp_path / "c.toml"
    bad.write_text("[camera]\nimage_size = [10, 10]\ndistance_m = 1\nfocal_px = 5\nspeed = 3\n")
    with pytest.raises(ValueError, match="speed"):
        load_camera_preset(bad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cameras_and_projection_on_cuda_match_the_cpu():
    dist = load_camera_preset("h36m")
    body = symmetric_body(32, torch.float32) + torch.linspace(0, 1, 32)[:, None, None]
    cpu = sample_cameras(dist, body, torch.Generator().manual_seed(4))
    gpu = sample_cameras(dist, body.cuda(), torch.Generator().manual_seed(4))
    assert gpu.K.is_cuda and gpu.image_size.is_cuda
    for f in ("K", "R", "t", "distortion"):
        torch.testing.assert_close(getattr(gpu, f).cpu(), getattr(cpu, f), rtol=0, atol=1e-6)
    pixels, cam = project(body.cuda(), gpu)
    want, _ = project(body, cpu)
    torch.testing.assert_close(pixels.cpu(), want, rtol=0, atol=1e-3)
