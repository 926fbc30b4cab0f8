"""The retry schedule: longer after each failure, never past its cap, jitter within its share."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blobrep.core.backoff import Backoff
from blobrep.errors import InvalidParameterError


@st.composite
def schedules(draw: st.DrawFn) -> Backoff:
    first = draw(st.floats(min_value=1e-3, max_value=1e3))
    cap = first * draw(st.floats(min_value=1.0, max_value=1e4))
    return Backoff(
        first=first,
        cap=cap,
        attempts=draw(st.integers(min_value=1, max_value=20)),
        factor=draw(st.floats(min_value=1.0, max_value=10.0)),
        jitter=draw(st.floats(min_value=0.0, max_value=0.99)),
    )


failures_ = st.integers(min_value=1, max_value=10_000)
draws = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)


def test_the_default_schedule_doubles_from_the_first_delay_up_to_the_cap() -> None:
    backoff = Backoff(first=10.0, cap=60.0)

    assert [backoff.nominal(failures) for failures in range(1, 7)] == [10.0, 20.0, 40.0, 60.0, 60.0, 60.0]


def test_it_gives_up_after_the_last_attempt_fails() -> None:
    backoff = Backoff(first=1.0, cap=30.0, attempts=5)

    assert [backoff.exhausted(failures) for failures in range(1, 7)] == [False] * 4 + [True] * 2


@given(backoff=schedules(), failures=failures_)
def test_each_failure_waits_at_least_as_long_as_the_one_before(backoff: Backoff, failures: int) -> None:
    assert backoff.nominal(failures + 1) >= backoff.nominal(failures)


@given(backoff=schedules(), failures=failures_)
def test_below_the_cap_each_delay_is_factor_times_the_one_before(backoff: Backoff, failures: int) -> None:
    before, after = backoff.nominal(failures), backoff.nominal(failures + 1)

    if after < backoff.cap:
        assert after == pytest.approx(before * backoff.factor, rel=1e-9)
    else:
        assert after == backoff.cap


@given(backoff=schedules(), failures=failures_, draw=draws)
def test_no_delay_is_longer_than_the_cap(backoff: Backoff, failures: int, draw: float) -> None:
    delay = backoff.delay(failures, draw)

    assert math.isfinite(delay)
    assert 0 < delay <= backoff.cap


@given(backoff=schedules(), failures=failures_, draw=draws)
def test_jitter_takes_off_at_most_its_share_of_the_delay(
    backoff: Backoff, failures: int, draw: float
) -> None:
    nominal = backoff.nominal(failures)

    assert nominal * (1 - backoff.jitter) <= backoff.delay(failures, draw) * (1 + 1e-12)
    assert backoff.delay(failures, draw) <= nominal


@given(failures=st.integers(min_value=1, max_value=50), early=draws, late=draws)
def test_default_jitter_never_makes_a_later_retry_come_sooner(
    failures: int, early: float, late: float
) -> None:
    backoff = Backoff(first=2.0, cap=1e6)

    if backoff.nominal(failures + 1) < backoff.cap:
        assert backoff.delay(failures + 1, late) >= backoff.delay(failures, early)


def test_a_draw_outside_the_unit_interval_is_refused() -> None:
    backoff = Backoff(first=1.0, cap=10.0)

    for draw in (-0.1, 1.0, math.nan):
        with pytest.raises(InvalidParameterError, match=r"\[0, 1\)"):
            backoff.delay(1, draw)


def test_a_delay_before_any_failure_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="1 failure or more"):
        Backoff(first=1.0, cap=10.0).nominal(0)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"first": 0.0, "cap": 1.0}, "positive number of seconds"),
        ({"first": math.inf, "cap": math.inf}, "positive number of seconds"),
        ({"first": 2.0, "cap": 1.0}, "at least the first delay"),
        ({"first": 1.0, "cap": 2.0, "attempts": 0}, "at least 1 attempt"),
        ({"first": 1.0, "cap": 2.0, "factor": 0.5}, "1 or more"),
        ({"first": 1.0, "cap": 2.0, "jitter": 1.0}, "up to"),
    ],
)
def test_a_schedule_that_cannot_work_is_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        Backoff(**fields)
