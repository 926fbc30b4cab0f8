"""Byte ranges and entity tags of a disk download: what RFC 9110 asks of a single-range server."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blobrep.core.ranges import (
    ByteRange,
    Unsatisfiable,
    entity_tag,
    if_range_holds,
    none_match,
    requested,
    slices,
)

SIZE = 1000
sizes = st.integers(min_value=0, max_value=1 << 50)
positions = st.integers(min_value=0, max_value=(1 << 50) + 10)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-0", ByteRange(0, 0)),
        ("bytes=0-999", ByteRange(0, 999)),
        ("bytes=10-", ByteRange(10, 999)),
        ("bytes=500-5000", ByteRange(500, 999)),
        ("bytes=-1", ByteRange(999, 999)),
        ("bytes=-1000", ByteRange(0, 999)),
        ("bytes=-99999", ByteRange(0, 999)),
        ("Bytes = 5-6", ByteRange(5, 6)),
        ("bytes= 5-6 ,", ByteRange(5, 6)),
        ("bytes=0005-0006", ByteRange(5, 6)),
        ("bytes=5-" + "9" * 5000, ByteRange(5, 999)),
        ("bytes=-" + "9" * 5000, ByteRange(0, 999)),
        ("bytes=1000-", Unsatisfiable(SIZE)),
        ("bytes=1000-2000", Unsatisfiable(SIZE)),
        ("bytes=" + "9" * 5000 + "-", Unsatisfiable(SIZE)),
        ("bytes=-0", Unsatisfiable(SIZE)),
        ("bytes=2000-3000, 1000-", Unsatisfiable(SIZE)),
        # Several ranges, or anything the server may ignore: the whole disk.
        ("bytes=0-1, 5-6", None),
        ("bytes=0-1,2000-", None),
        ("bytes=6-5", None),
        ("bytes=0-1,6-5", None),
        ("bytes=-", None),
        ("bytes=", None),
        ("bytes=,", None),
        ("bytes=a-b", None),
        ("bytes=1_0-20", None),
        ("bytes=\u0661-2", None),  # ARABIC-INDIC DIGIT ONE
        ("bytes=+1-2", None),
        ("bytes 0-1", None),
        ("items=0-1", None),
        ("", None),
        (None, None),
    ],
)
def test_a_range_header_selects_one_range_the_whole_disk_or_nothing(
    header: str | None, expected: ByteRange | Unsatisfiable | None
) -> None:
    assert requested(header, SIZE) == expected


def test_an_empty_disk_satisfies_no_range() -> None:
    for header in ("bytes=0-0", "bytes=0-", "bytes=-1", "bytes=-0"):
        assert requested(header, 0) == Unsatisfiable(0)
    assert requested(None, 0) is None


def test_content_range_values() -> None:
    assert ByteRange(5, 9).content_range(1000) == "bytes 5-9/1000"
    assert ByteRange(5, 9).length == 5
    assert Unsatisfiable(1000).content_range == "bytes */1000"


@given(size=sizes, first=positions, last=positions)
def test_a_first_last_range_is_clipped_to_the_disk_or_unsatisfiable(size: int, first: int, last: int) -> None:
    first, last = min(first, last), max(first, last)
    answer = requested(f"bytes={first}-{last}", size)
    if first >= size:
        assert answer == Unsatisfiable(size)
    else:
        assert answer == ByteRange(first, min(last, size - 1))


@given(size=sizes, suffix=positions)
def test_a_suffix_range_is_the_last_bytes(size: int, suffix: int) -> None:
    answer = requested(f"bytes=-{suffix}", size)
    if suffix == 0 or size == 0:
        assert answer == Unsatisfiable(size)
    else:
        assert answer == ByteRange(max(0, size - suffix), size - 1)


@given(size=sizes, header=st.text(max_size=60))
def test_any_header_gets_an_answer_within_the_disk(size: int, header: str) -> None:
    answer = requested(header, size)
    if isinstance(answer, ByteRange):
        assert 0 <= answer.first <= answer.last < size
    else:
        assert answer is None or answer == Unsatisfiable(size)


@given(
    size=st.integers(min_value=1, max_value=10_000),
    ranges=st.lists(st.tuples(positions, positions), min_size=2, max_size=5),
)
def test_several_ranges_get_the_whole_disk_unless_none_is_satisfiable(
    size: int, ranges: list[tuple[int, int]]
) -> None:
    specs = [(min(a, b), max(a, b)) for a, b in ranges]
    answer = requested("bytes=" + ", ".join(f"{a}-{b}" for a, b in specs), size)
    if all(first >= size for first, _ in specs):
        assert answer == Unsatisfiable(size)
    else:
        assert answer is None


TAG = entity_tag("0123456789abcdef0123456789abcdef")


def test_the_entity_tag_is_the_quoted_digest() -> None:
    assert TAG == '"0123456789abcdef0123456789abcdef"'


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (TAG, True),
        ("W/" + TAG, True),
        ("*", True),
        (' "other" , ' + TAG, True),
        ('"a,b", W/' + TAG, True),
        ('"other"', False),
        (TAG[1:-1], False),
        (TAG + " garbage", False),
        ("", False),
        (None, False),
    ],
)
def test_if_none_match_compares_weakly_and_star_matches(header: str | None, matches: bool) -> None:
    assert none_match(header, TAG) is matches


@pytest.mark.parametrize(
    ("header", "holds"),
    [
        (None, True),
        (TAG, True),
        ("W/" + TAG, False),
        ('"other"', False),
        ("Tue, 15 Nov 1994 08:12:31 GMT", False),
        (TAG + ', "other"', False),
    ],
)
def test_if_range_holds_only_for_the_same_strong_tag(header: str | None, holds: bool) -> None:
    assert if_range_holds(header, TAG) is holds


@given(
    lengths=st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=40),
    data=st.data(),
)
def test_the_slices_of_the_chunks_make_up_the_range(lengths: list[int], data: st.DataObject) -> None:
    offsets = [0, *itertools.accumulate(lengths)][:-1]
    size = sum(lengths)
    blob = bytes(index % 251 for index in range(size))
    first = data.draw(st.integers(min_value=0, max_value=size - 1))
    last = data.draw(st.integers(min_value=first, max_value=size - 1))
    parts = list(slices(offsets, lengths, ByteRange(first, last)))
    assembled = b"".join(
        blob[offsets[index] + skip : offsets[index] + skip + take] for index, skip, take in parts
    )
    assert assembled == blob[first : last + 1]
    assert all(take > 0 for _, _, take in parts)
    assert [index for index, _, _ in parts] == list(range(parts[0][0], parts[-1][0] + 1))
