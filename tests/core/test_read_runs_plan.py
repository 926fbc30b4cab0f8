"""Which chunks one ranged read fetches together (:func:`read_run`): frames back to back in
one pack, zero chunks between them skipped, within the count and byte limits."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blobrep.core.manifest import ChunkRef
from blobrep.core.packs import PackRef
from blobrep.core.runs import read_run

PACK_A = PackRef("a" * 32, 1 << 20)
PACK_B = PackRef("b" * 32, 1 << 20)


def packed(number: int, pack: PackRef, offset: int, stored: int = 100) -> ChunkRef:
    return ChunkRef(f"{number:032x}", 1000, stored, pack, offset)


def zero(length: int = 4096) -> ChunkRef:
    return ChunkRef(None, length, 0)


def test_frames_back_to_back_in_one_pack_are_one_run_across_zero_chunks() -> None:
    chunks = [packed(1, PACK_A, 0), zero(), packed(2, PACK_A, 100), zero(), zero(), packed(3, PACK_A, 200)]

    assert read_run(chunks, 0, 8, 10_000) == [0, 2, 5]


@pytest.mark.parametrize(
    ("after", "why"),
    [
        (packed(2, PACK_B, 100), "another pack"),
        (packed(2, PACK_A, 150), "a gap after the frame"),
        (packed(2, PACK_A, 0), "an earlier frame"),
        (ChunkRef("2" * 32, 1000, 100), "a chunk stored alone"),
    ],
)
def test_a_run_ends_at_a_frame_that_does_not_follow(after: ChunkRef, why: str) -> None:
    chunks = [packed(1, PACK_A, 0), after, packed(3, PACK_A, 100)]

    assert read_run(chunks, 0, 8, 10_000) == [0], why


def test_a_run_stops_at_its_count_and_byte_limits_but_always_holds_its_first_chunk() -> None:
    chunks = [packed(number, PACK_A, number * 100) for number in range(10)]

    assert read_run(chunks, 0, 3, 10_000) == [0, 1, 2]
    assert read_run(chunks, 0, 8, 250) == [0, 1]
    assert read_run(chunks, 4, 8, 50) == [4]
    assert read_run([ChunkRef("1" * 32, 1000, 100)], 0, 8, 10_000) == [0]


layouts = st.lists(
    st.one_of(
        st.just(("zero", 0, 0)),
        st.tuples(st.sampled_from(["a", "b", "alone"]), st.integers(0, 3), st.integers(1, 300)),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(layout=layouts, start=st.integers(0, 29), count=st.integers(1, 10), limit=st.integers(1, 3000))
def test_a_run_is_the_longest_chain_of_following_frames_within_its_limits(
    layout: list[tuple[str, int, int]], start: int, count: int, limit: int
) -> None:
    ends = {"a": 0, "b": 0}
    chunks: list[ChunkRef] = []
    for number, (kind, gap, stored) in enumerate(layout):
        if kind == "zero":
            chunks.append(zero())
        elif kind == "alone":
            chunks.append(ChunkRef(f"{number:032x}", 1000, stored))
        else:
            offset = ends[kind] + gap
            ends[kind] = offset + stored
            chunks.append(packed(number, PACK_A if kind == "a" else PACK_B, offset, stored))
    stored_positions = [position for position, chunk in enumerate(chunks) if not chunk.is_zero]
    if not stored_positions:
        return
    first = stored_positions[start % len(stored_positions)]

    run = read_run(chunks, first, count, limit)

    assert run[0] == first and run == sorted(run)
    assert len(run) <= count
    assert len(run) == 1 or sum(chunks[position].stored_length for position in run) <= limit
    for before, after in itertools.pairwise(run):
        assert chunks[after].follows(chunks[before])
        assert all(chunks[between].is_zero for between in range(before + 1, after))
    following = [position for position in stored_positions if position > run[-1]]
    if following and len(run) < count and chunks[following[0]].follows(chunks[run[-1]]):
        total = sum(chunks[position].stored_length for position in [*run, following[0]])
        assert total > limit, "the run stopped early"
