"""Nearest-rank percentiles."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blobrep.core.stats import percentile
from blobrep.errors import InvalidParameterError

values_ = st.lists(st.floats(min_value=-1e9, max_value=1e9), min_size=1, max_size=200)
ps = st.floats(min_value=0, max_value=100)


def test_nearest_rank_on_the_textbook_example() -> None:
    values = [15.0, 20.0, 35.0, 40.0, 50.0]

    assert [percentile(values, p) for p in (5, 30, 40, 50, 100)] == [15.0, 20.0, 20.0, 35.0, 50.0]


def test_p99_of_a_hundred_values_is_the_ninety_ninth() -> None:
    values = [float(v) for v in range(100, 0, -1)]

    assert percentile(values, 99) == 99.0
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99.9) == 100.0


def test_zero_gives_the_minimum_and_a_hundred_the_maximum() -> None:
    values = [3.0, 1.0, 2.0]

    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 3.0


@given(values=values_, p=ps)
def test_a_percentile_is_one_of_the_values_with_at_least_p_percent_at_or_below_it(
    values: list[float], p: float
) -> None:
    result = percentile(values, p)

    share = Fraction(str(p)) * len(values) / 100
    assert result in values
    assert sum(1 for value in values if value <= result) >= share
    # And the smallest such value: fewer than p percent lie strictly below it.
    below = sum(1 for value in values if value < result)
    assert below == 0 or below < share


@given(values=values_, low=ps, high=ps)
def test_percentiles_grow_with_p(values: list[float], low: float, high: float) -> None:
    low, high = sorted((low, high))

    assert percentile(values, low) <= percentile(values, high)


def test_no_values_or_p_out_of_range_is_an_error() -> None:
    with pytest.raises(InvalidParameterError, match="no values"):
        percentile([], 50)
    for p in (-1, 100.5, math.nan):
        with pytest.raises(InvalidParameterError, match=r"outside 0\.\.100"):
            percentile([1.0], p)
