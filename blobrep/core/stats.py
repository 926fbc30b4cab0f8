"""Small summary statistics for reports: nearest-rank percentiles.

Nearest rank (the smallest value with at least ``p`` percent of the values at or below it)
always returns one of the measured values, never an interpolation between two: a p99 of
deployment times is the time some deployment really took.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

from blobrep.errors import InvalidParameterError


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile of ``values`` (0 gives the minimum, 100 the maximum).

    ``p`` is taken as the decimal it is written as (99.9 is 999/1000), so that ranks do not
    shift by one through binary rounding.

    Raises:
        InvalidParameterError: if ``values`` is empty or ``p`` is outside 0..100.
    """
    if not values:
        raise InvalidParameterError("a percentile of no values is undefined")
    if isinstance(p, bool) or not 0 <= p <= 100:
        raise InvalidParameterError(f"percentile {p!r} is outside 0..100")
    ordered = sorted(values)
    rank = math.ceil(Fraction(str(p)) * len(ordered) / 100)
    return ordered[max(rank, 1) - 1]
