"""Benchmark inputs shared by architecture plugins' ``bench_case`` (NumPy only: no loader, no timing)."""

from __future__ import annotations

import numpy as np


def bench_candidates(count: int, num_classes: int, width: int, height: int, density: float,
                     rng) -> tuple[np.ndarray, np.ndarray]:
    """Benchmark candidates of a dense head: (boxes [N, 4] cx cy w h in network pixels, 4-200 px wide,
    scores [N, C] below 0.05 except one class of a fraction ``density`` of candidates, 0.3-1.0)."""
    boxes = np.zeros((count, 4), np.float32)
    boxes[:, 0] = rng.uniform(0, width, count)
    boxes[:, 1] = rng.uniform(0, height, count)
    boxes[:, 2:4] = rng.uniform(4, 200, (count, 2))
    scores = rng.uniform(0, 0.05, (count, num_classes)).astype(np.float32)
    hits = rng.random(count) < density
    scores[hits, rng.integers(0, num_classes, int(hits.sum()))] = rng.uniform(0.3, 1.0, int(hits.sum()))
    return boxes, scores
