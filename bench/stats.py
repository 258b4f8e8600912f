"""Small statistics shared by the benchmark's parts."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The value at quantile ``q`` (0..1) of already sorted values (nearest rank)."""
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0
