"""The replication planner: every missing chunk planned exactly once per replica lacking it,
complete replicas untouched, and byte totals that add up; the least-loaded pick."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blobrep.core.replication import (
    ReplicaState,
    ReplicationPlan,
    plan_replication,
    progress_percent,
)
from blobrep.errors import InvalidParameterError
from tests.core.strategies import digests

PLANS = settings(max_examples=150, deadline=None)

chunk_maps = st.dictionaries(digests, st.integers(min_value=1, max_value=5_000_000), max_size=30)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, int], list[ReplicaState]]:
    """A manifest's chunks and replicas holding any mix of them, right-sized, wrong-sized or foreign."""
    chunks = draw(chunk_maps)
    replicas: list[ReplicaState] = []
    for region in draw(st.lists(st.sampled_from(["east", "west", "north", "south"]), unique=True)):
        for index in range(1, draw(st.integers(min_value=1, max_value=3)) + 1):
            held: dict[str, int] = {}
            for digest, size in chunks.items():
                kind = draw(st.sampled_from(["missing", "right", "wrong"]))
                if kind != "missing":
                    held[digest] = size if kind == "right" else size + draw(st.sampled_from([-1, 1, 7]))
            foreign = draw(st.dictionaries(digests, st.integers(min_value=1, max_value=100), max_size=3))
            held.update({digest: size for digest, size in foreign.items() if digest not in chunks})
            replicas.append(ReplicaState(region, index, draw(st.booleans()), held))
    draw(st.randoms()).shuffle(replicas)
    return chunks, replicas


def lacking(chunks: dict[str, int], replica: ReplicaState) -> list[str]:
    """What a replica must receive, by the definition the planner implements."""
    if replica.has_manifest:
        return []
    return [digest for digest, size in chunks.items() if replica.held.get(digest) != size]


@PLANS
@given(scenarios())
def test_every_missing_chunk_is_planned_exactly_once_per_replica_that_lacks_it(
    scenario: tuple[dict[str, int], list[ReplicaState]],
) -> None:
    chunks, replicas = scenario

    plan = plan_replication(chunks, replicas)

    planned = Counter((copy.digest, target) for copy in plan.copies for target in copy.targets)
    expected = Counter(
        (digest, position) for position, r in enumerate(replicas) for digest in lacking(chunks, r)
    )
    assert planned == expected
    needed = {digest for digest, _ in expected}
    assert [copy.digest for copy in plan.copies] == [digest for digest in chunks if digest in needed]
    for copy in plan.copies:
        assert copy.targets, "a chunk nobody lacks is not read at all"
        assert copy.stored_length == chunks[copy.digest]
    for replica, replica_plan in zip(replicas, plan.replicas, strict=True):
        assert (replica_plan.region, replica_plan.index) == (replica.region, replica.index)
        assert list(replica_plan.missing) == lacking(chunks, replica)


@PLANS
@given(scenarios())
def test_complete_replicas_get_nothing(scenario: tuple[dict[str, int], list[ReplicaState]]) -> None:
    chunks, replicas = scenario

    plan = plan_replication(chunks, replicas)

    complete = {position for position, replica in enumerate(replicas) if replica.has_manifest}
    assert {position for position, p in enumerate(plan.replicas) if p.complete} == complete
    for position in complete:
        assert plan.replicas[position].missing == ()
        assert plan.replicas[position].missing_bytes == 0
        assert all(position not in copy.targets for copy in plan.copies)


def _check_totals(plan: ReplicationPlan, replicas: list[ReplicaState]) -> None:
    copied = sum(copy.stored_length * len(copy.targets) for copy in plan.copies)
    assert plan.total_bytes == copied == sum(p.missing_bytes for p in plan.replicas)
    assert set(plan.region_bytes) == {replica.region for replica in replicas}
    for region, total in plan.region_bytes.items():
        assert total == sum(p.missing_bytes for p in plan.replicas if p.region == region)


@PLANS
@given(scenarios())
def test_totals_add_up_per_replica_region_and_plan(
    scenario: tuple[dict[str, int], list[ReplicaState]],
) -> None:
    chunks, replicas = scenario

    plan = plan_replication(chunks, replicas)

    _check_totals(plan, replicas)
    for replica, replica_plan in zip(replicas, plan.replicas, strict=True):
        assert replica_plan.missing_bytes == sum(chunks[digest] for digest in lacking(chunks, replica))


@PLANS
@given(chunk_maps)
def test_empty_replicas_need_every_chunk_and_full_ones_only_their_manifest(chunks: dict[str, int]) -> None:
    replicas = [
        ReplicaState("east", 1, has_manifest=False),
        ReplicaState("east", 2, has_manifest=False, held=dict(chunks)),
    ]

    plan = plan_replication(chunks, replicas)

    assert plan.replicas[0].missing == tuple(chunks)
    assert plan.replicas[1].missing == ()
    assert not plan.replicas[1].complete, "a full replica without a manifest still needs its commit"
    assert plan.region_bytes == {"east": sum(chunks.values())}
    assert all(copy.targets == (0,) for copy in plan.copies)


def test_a_region_with_nothing_to_do_appears_with_zero_bytes() -> None:
    plan = plan_replication({"a" * 32: 10}, [ReplicaState("west", 1, has_manifest=True)])

    assert plan.region_bytes == {"west": 0}
    assert plan.copies == ()
    assert progress_percent(0, plan.total_bytes) == 100


def test_a_replica_listed_twice_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="replica 2 of region east"):
        plan_replication({}, [ReplicaState("east", 2, False), ReplicaState("east", 2, True)])


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=0, max_value=10**12))
def test_progress_percent_stays_in_range_and_reaches_100_only_when_done(done: int, total: int) -> None:
    percent = progress_percent(min(done, total), total)

    assert 0 <= percent <= 100
    assert (percent == 100) == (min(done, total) == total)
