"""Replica selection policies: pure choices over a snapshot of outstanding bytes."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blobrep.core.selection import Policy, choose_replica, parse_policy
from blobrep.errors import InvalidParameterError

loads = st.lists(st.integers(min_value=0, max_value=1 << 40), min_size=1, max_size=12)
seeds = st.integers(min_value=0, max_value=2**32)
turns = st.integers(min_value=0, max_value=10**6)


@st.composite
def loads_and_exclusions(draw: st.DrawFn) -> tuple[list[int], set[int]]:
    """Loads for some replicas and a set of excluded indexes that leaves at least one."""
    outstanding = draw(loads)
    indexes = range(len(outstanding))
    keep = draw(st.sampled_from(indexes))
    exclude = draw(st.sets(st.sampled_from(indexes))) - {keep}
    return outstanding, exclude


@given(case=loads_and_exclusions(), policy=st.sampled_from(Policy), seed=seeds, turn=turns)
def test_no_policy_ever_returns_an_excluded_replica(
    case: tuple[list[int], set[int]], policy: Policy, seed: int, turn: int
) -> None:
    outstanding, exclude = case

    index = choose_replica(policy, outstanding, rng=random.Random(seed), turn=turn, exclude=exclude)

    assert 0 <= index < len(outstanding)
    assert index not in exclude


@given(case=loads_and_exclusions(), seed=seeds)
def test_least_loaded_returns_a_replica_with_the_fewest_outstanding_bytes(
    case: tuple[list[int], set[int]], seed: int
) -> None:
    outstanding, exclude = case

    index = choose_replica(Policy.LEAST_LOADED, outstanding, rng=random.Random(seed), turn=0, exclude=exclude)

    assert outstanding[index] == min(load for i, load in enumerate(outstanding) if i not in exclude)


@settings(max_examples=25)
@given(replicas=st.integers(min_value=2, max_value=8), load=st.integers(min_value=0, max_value=1 << 30))
@pytest.mark.parametrize("policy", [Policy.LEAST_LOADED, Policy.POWER_OF_TWO, Policy.RANDOM])
def test_ties_are_spread_over_every_tied_replica(policy: Policy, replicas: int, load: int) -> None:
    rng = random.Random(replicas * 7919 + load)
    outstanding = [load] * replicas

    counts = Counter(choose_replica(policy, outstanding, rng=rng, turn=0) for _ in range(400 * replicas))

    # Each replica's share is binomial(n, 1/k) with mean 400; 250 is about eight deviations
    # below it, so a fair choice never fails this and a biased one cannot pass.
    assert set(counts) == set(range(replicas))
    assert min(counts.values()) > 250


@settings(max_examples=25)
@given(
    busy=st.lists(st.booleans(), min_size=2, max_size=8).filter(lambda flags: flags.count(False) >= 2),
    load=st.integers(min_value=0, max_value=1 << 30),
)
def test_least_loaded_spreads_ties_over_the_least_loaded_only(busy: list[bool], load: int) -> None:
    rng = random.Random(load)
    outstanding = [load + 1 if flag else load for flag in busy]
    tied = {index for index, flag in enumerate(busy) if not flag}

    counts = Counter(
        choose_replica(Policy.LEAST_LOADED, outstanding, rng=rng, turn=0) for _ in range(400 * len(tied))
    )

    assert set(counts) == tied
    assert min(counts.values()) > 250


@given(case=loads_and_exclusions(), start=turns)
def test_round_robin_visits_every_candidate_once_per_cycle(
    case: tuple[list[int], set[int]], start: int
) -> None:
    outstanding, exclude = case
    candidates = [i for i in range(len(outstanding)) if i not in exclude]
    rng = random.Random(0)

    cycle = [
        choose_replica(Policy.ROUND_ROBIN, outstanding, rng=rng, turn=turn, exclude=exclude)
        for turn in range(start, start + len(candidates))
    ]
    again = [
        choose_replica(Policy.ROUND_ROBIN, outstanding, rng=rng, turn=turn + len(candidates), exclude=exclude)
        for turn in range(start, start + len(candidates))
    ]

    assert sorted(cycle) == candidates
    assert again == cycle


@given(case=loads_and_exclusions(), seed=seeds)
def test_power_of_two_never_picks_a_replica_busier_than_every_other(
    case: tuple[list[int], set[int]], seed: int
) -> None:
    outstanding, exclude = case
    candidates = [i for i in range(len(outstanding)) if i not in exclude]

    index = choose_replica(Policy.POWER_OF_TWO, outstanding, rng=random.Random(seed), turn=0, exclude=exclude)

    others = [outstanding[i] for i in candidates if i != index]
    if others:
        assert outstanding[index] <= max(others)


@given(low=st.integers(min_value=0, max_value=1 << 30), extra=st.integers(min_value=1, max_value=1 << 30))
def test_power_of_two_between_two_different_loads_always_takes_the_lighter(low: int, extra: int) -> None:
    rng = random.Random(low)
    for outstanding, lighter in (([low, low + extra], 0), ([low + extra, low], 1)):
        chosen = {choose_replica(Policy.POWER_OF_TWO, outstanding, rng=rng, turn=0) for _ in range(20)}
        assert chosen == {lighter}


@given(outstanding=loads, seed=seeds, turn=turns)
def test_the_same_seed_gives_the_same_choice(outstanding: list[int], seed: int, turn: int) -> None:
    for policy in Policy:
        first = choose_replica(policy, outstanding, rng=random.Random(seed), turn=turn)
        assert choose_replica(policy, outstanding, rng=random.Random(seed), turn=turn) == first


@pytest.mark.parametrize("policy", list(Policy))
def test_a_single_remaining_replica_is_chosen_whatever_its_load(policy: Policy) -> None:
    index = choose_replica(policy, [0, 10**9, 0], rng=random.Random(1), turn=5, exclude={0, 2})

    assert index == 1


@pytest.mark.parametrize("policy", list(Policy))
def test_excluding_every_replica_is_an_error(policy: Policy) -> None:
    with pytest.raises(InvalidParameterError, match="all 3 are excluded"):
        choose_replica(policy, [1, 2, 3], rng=random.Random(1), turn=0, exclude={0, 1, 2})
    with pytest.raises(InvalidParameterError, match="has none"):
        choose_replica(policy, [], rng=random.Random(1), turn=0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("least-loaded", Policy.LEAST_LOADED),
        ("power-of-two", Policy.POWER_OF_TWO),
        (" Round-Robin ", Policy.ROUND_ROBIN),
        ("RANDOM", Policy.RANDOM),
    ],
)
def test_parse_policy_accepts_each_name(text: str, expected: Policy) -> None:
    assert parse_policy(text) is expected


def test_parse_policy_lists_the_choices_for_an_unknown_name() -> None:
    with pytest.raises(InvalidParameterError) as caught:
        parse_policy("fastest")

    message = str(caught.value)
    assert "'fastest'" in message
    for policy in Policy:
        assert policy.value in message
