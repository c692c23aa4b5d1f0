"""The detector-like 2D noise model."""

import pytest
import torch

from posesynth.keypoint_sets import KEYPOINT_SETS
from posesynth.noise import COCO_SIGMAS, DetectorNoise, add_detector_noise, keypoint_sigmas

COCO = KEYPOINT_SETS["coco17"]


def clean_pixels(B=2000, V=1, J=17, dtype=torch.float32, seed=0):
    """Keypoints spread over a box of random size and position, per view."""
    g = torch.Generator().manual_seed(seed)
    size = 50 + 400 * torch.rand(B, V, 1, 1, generator=g, dtype=torch.float64)
    corner = 1000 * torch.rand(B, V, 1, 2, generator=g, dtype=torch.float64)
    unit = torch.rand(B, V, J, 2, generator=g, dtype=torch.float64)
    unit[:, :, 0] = 0.0  # the box spans exactly [corner, corner + size]
    unit[:, :, 1] = 1.0
    return (corner + size * unit).to(dtype)


def bbox_size(pixels):
    return (pixels.amax(2) - pixels.amin(2)).prod(-1).sqrt()[..., None]  # (B, V, 1)


def test_jitter_has_the_documented_spread():
    clean = clean_pixels(B=4000, V=2)
    noise = DetectorNoise(scale=1.5, outlier_prob=0.0, swap_prob=0.0)
    noisy = add_detector_noise(clean, COCO, noise, torch.Generator().manual_seed(1))
    z = (noisy - clean).double() / bbox_size(clean.double()).unsqueeze(-1)  # in bbox units
    std = z.std(dim=(0, 1, 3))  # per keypoint, both coordinates
    want = 1.5 * torch.tensor([COCO_SIGMAS[n] for n in COCO.joint_names], dtype=torch.float64)
    torch.testing.assert_close(std, want, rtol=0.04, atol=0)
    assert z.mean().abs() < 0.002


def test_swaps_exchange_left_and_right_partners():
    clean = clean_pixels(B=50)
    noise = DetectorNoise(scale=0.0, outlier_prob=0.0, swap_prob=1.0)
    noisy = add_detector_noise(clean, COCO, noise, torch.Generator().manual_seed(2))
    names = COCO.joint_names
    for left, right in COCO.mirror_pairs:
        assert torch.equal(noisy[:, :, left], clean[:, :, right])
        assert torch.equal(noisy[:, :, right], clean[:, :, left])
    assert torch.equal(noisy[:, :, names.index("nose")], clean[:, :, names.index("nose")])
    assert len(COCO.mirror_pairs) == 8


def test_swaps_happen_at_their_rate_per_pair():
    clean = clean_pixels(B=5000)
    noise = DetectorNoise(scale=0.0, outlier_prob=0.0, swap_prob=0.1)
    noisy = add_detector_noise(clean, COCO, noise, torch.Generator().manual_seed(3))
    left = [l for l, _ in COCO.mirror_pairs]
    right = [r for _, r in COCO.mirror_pairs]
    swapped = (noisy[:, :, left] == clean[:, :, right]).all(-1)
    assert abs(float(swapped.double().mean()) - 0.1) < 0.01


def test_outliers_happen_at_their_rate_and_stay_in_their_disc():
    clean = clean_pixels(B=5000)
    noise = DetectorNoise(scale=0.0, outlier_prob=0.2, outlier_radius=0.3, swap_prob=0.0)
    noisy = add_detector_noise(clean, COCO, noise, torch.Generator().manual_seed(4))
    moved = (noisy - clean).norm(dim=-1)
    rate = (moved > 1e-3).double().mean()
    assert abs(float(rate) - 0.2) < 0.01
    assert (moved <= 0.3 * bbox_size(clean) + 1e-3).all()
    # uniform in the disc: half of them beyond 1/sqrt(2) of the radius
    far = (moved > 0.3 * bbox_size(clean) / 2**0.5)[moved > 1e-3].double().mean()
    assert abs(float(far) - 0.5) < 0.03


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_deterministic_and_clean_input_untouched(dtype):
    clean = clean_pixels(B=64, V=3, dtype=dtype)
    before = clean.clone()
    noise = DetectorNoise()
    a = add_detector_noise(clean, COCO, noise, torch.Generator().manual_seed(5))
    b = add_detector_noise(clean, COCO, noise, torch.Generator().manual_seed(5))
    c = add_detector_noise(clean, COCO, noise, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(clean, before)
    assert a.dtype == dtype and a.shape == clean.shape and a.data_ptr() != clean.data_ptr()
    # the draws depend on the shape only: float32 and float64 inputs get the same noise
    other = add_detector_noise(clean.double(), COCO, noise, torch.Generator().manual_seed(5))
    torch.testing.assert_close(other.to(dtype), a, rtol=0, atol=1e-3)


def test_zero_noise_is_the_identity_copy():
    clean = clean_pixels(B=8)
    noisy = add_detector_noise(clean, COCO, DetectorNoise(scale=0.0, outlier_prob=0.0, swap_prob=0.0),
                               torch.Generator())
    assert torch.equal(noisy, clean)


def test_sigmas_for_every_set():
    coco = keypoint_sigmas(COCO)
    assert coco.tolist() == pytest.approx([COCO_SIGMAS[n] for n in COCO.joint_names])
    h36m = dict(zip(KEYPOINT_SETS["h36m17"].joint_names, keypoint_sigmas(KEYPOINT_SETS["h36m17"]).tolist()))
    assert h36m["left_wrist"] == pytest.approx(0.062) and h36m["pelvis"] == pytest.approx(0.107)
    assert h36m["neck_nose"] == pytest.approx(0.026) and h36m["thorax"] == pytest.approx(0.079)
    smpl = dict(zip(KEYPOINT_SETS["smpl24"].joint_names, keypoint_sigmas(KEYPOINT_SETS["smpl24"]).tolist()))
    assert smpl["left_hand"] == pytest.approx(0.062) and smpl["right_foot"] == pytest.approx(0.089)
    custom = keypoint_sigmas(COCO, DetectorNoise(sigmas={"nose": 0.05}))
    assert float(custom[0]) == pytest.approx(0.05) and float(custom[1]) == pytest.approx(0.025)


def test_bad_parameters_are_named():
    for table, key in (({"scale": -1}, "scale"), ({"outlier_prob": 1.5}, "outlier_prob"),
                       ({"swap_prob": "x"}, "swap_prob"), ({"sigmas": {"nose": -1}}, "sigmas.nose")):
        with pytest.raises(ValueError, match=key):
            DetectorNoise(**table)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="pixels"):
        add_detector_noise(torch.zeros(2, 17, 2), COCO, DetectorNoise(), torch.Generator())
    with pytest.raises(ValueError, match="coco17"):
        add_detector_noise(torch.zeros(2, 1, 5, 2), COCO, DetectorNoise(), torch.Generator())
    with pytest.raises(ValueError, match="generator"):
        add_detector_noise(torch.zeros(2, 1, 17, 2), COCO, DetectorNoise(), None)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_noise_on_cuda_matches_the_cpu():
    clean = clean_pixels(B=32, V=2)
    cpu = add_detector_noise(clean, COCO, DetectorNoise(), torch.Generator().manual_seed(7))
    gpu = add_detector_noise(clean.cuda(), COCO, DetectorNoise(), torch.Generator().manual_seed(7))
    assert gpu.is_cuda
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=0, atol=1e-3)
