"""The cross-entropy method: a seeded, derivative-free minimiser over a box of real vectors.

``cross_entropy`` draws ``population`` candidates from a diagonal Gaussian, keeps the ``elites``
best, refits the Gaussian to them and repeats.  A candidate is held inside the search box by
``clip`` before it is judged, and the elites' clipped vectors set the next Gaussian.  The
objective must be deterministic (the same vector, the same value; ``alignment`` gives every
candidate the same poses, bodies and camera draws), so the search is deterministic under its seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SearchSizes:
    """The search's sizes (the adapt recipe's ``[align]``)."""

    population: int  # candidates per iteration
    elites: int  # the best this many set the next iteration's Gaussian
    iterations: int


@dataclass(frozen=True)
class SearchResult:
    best: np.ndarray  # (D,) the best vector found (the start if nothing beat it)
    before: float  # the objective at the start
    after: float  # at ``best``
    history: tuple[float, ...]  # the best value after each iteration


def cross_entropy(objective: Callable[[np.ndarray], float], start: np.ndarray, spread: np.ndarray,
                  clip: Callable[[np.ndarray], np.ndarray], sizes: SearchSizes, seed: int,
                  log: Callable[[str], None] | None = None, what: str = "value") -> SearchResult:
    """Minimise ``objective`` from ``start`` (D,), the first Gaussian's standard deviations
    ``spread`` (D,) (never shrinking below 2% of them); ``clip`` maps a vector into the box;
    ``log`` hears the best value (named ``what``) after each iteration."""
    rng = np.random.default_rng(seed)
    mean, std, floor = start, spread, 0.02 * spread
    best, best_value = start, objective(start)
    before, history = best_value, []
    for it in range(sizes.iterations):
        candidates = [clip(mean + std * rng.standard_normal(len(mean))) for _ in range(sizes.population)]
        values = np.array([objective(c) for c in candidates])
        order = np.argsort(values, kind="stable")[: sizes.elites]
        elite = np.stack([candidates[i] for i in order])
        mean, std = elite.mean(0), np.maximum(elite.std(0), floor)
        if values[order[0]] < best_value:
            best, best_value = candidates[order[0]], float(values[order[0]])
        history.append(best_value)
        if log:
            log(f"align: iteration {it + 1}/{sizes.iterations}, best {what} {best_value:.4g}")
    return SearchResult(best, before, best_value, tuple(history))
