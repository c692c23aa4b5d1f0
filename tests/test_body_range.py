"""The wide body range: bodies drawn uniformly over written-down proportion limits."""

import pytest
import torch

from posesynth.body_model import load_body_model
from posesynth.body_range import PROPORTION_LIMITS, SEGMENTS, WideBodyRange, leg_length, rest_height

N = 4000


@pytest.fixture(scope="module")
def wide(body):
    return WideBodyRange.for_body(body)


@pytest.fixture(scope="module")
def drawn(wide):
    betas = wide.sample(N, torch.Generator().manual_seed(0))
    scale = 1.0 + betas[:, 0] * wide.scale_per_beta
    return betas, scale, wide.lengths(betas) / (scale[:, None] * wide.template)


def test_scales_stay_within_the_stature_limits(drawn):
    _, scale, _ = drawn
    lo, hi = PROPORTION_LIMITS["scale"]
    assert lo - 1e-4 <= scale.min() and scale.max() <= hi + 1e-4


@pytest.mark.parametrize("k, name", list(enumerate(SEGMENTS)))
def test_segment_proportions_stay_within_their_limits(drawn, k, name):
    lo, hi = PROPORTION_LIMITS[name]
    proportion = drawn[2][:, k]
    assert lo - 0.01 <= proportion.min() and proportion.max() <= hi + 0.01


@pytest.mark.parametrize("k, name", list(enumerate(SEGMENTS)))
def test_segment_proportions_span_their_limits(drawn, k, name):
    lo, hi = PROPORTION_LIMITS[name]
    proportion = drawn[2][:, k]
    assert proportion.min() < lo + 0.03 * (hi - lo) and proportion.max() > hi - 0.03 * (hi - lo)


def test_proportions_are_drawn_independently(drawn):
    corr = torch.corrcoef(drawn[2].T.double())
    off_diagonal = corr - torch.diag(torch.diag(corr))
    assert off_diagonal.abs().max() < 0.1


def test_the_same_seed_gives_the_same_bodies(wide):
    a = wide.sample(64, torch.Generator().manual_seed(5))
    b = wide.sample(64, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_a_body_model_without_the_named_directions_is_refused():
    with pytest.raises(ValueError, match="10 named shape directions"):
        WideBodyRange.for_body(load_body_model(num_betas=5))


@pytest.mark.parametrize("measure, size", [(rest_height, 1.5), (leg_length, 0.8)])
def test_scaled_to_meets_the_size_and_moves_only_the_stature(wide, measure, size):
    betas = wide.sample(50, torch.Generator().manual_seed(4))
    sizes = torch.full((50,), size, dtype=betas.dtype)
    scaled = wide.scaled_to(betas, sizes, measure)
    assert torch.allclose(measure(wide.body.rest_joints(scaled)), sizes, atol=2e-3)
    assert torch.equal(scaled[:, 1:], betas[:, 1:])
