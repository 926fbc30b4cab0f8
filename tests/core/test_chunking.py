"""Chunk boundary finding: content-defined (FastCDC) and fixed-size."""

from __future__ import annotations

import itertools
import random
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blobrep.core.chunking import DEFAULT_AVG_SIZE, MIB, BoundaryFinder, ChunkingSpec
from blobrep.core.codec import digest_of
from blobrep.errors import InvalidParameterError
from tests.core.strategies import blob_bytes, chunking_specs, fixed_specs

CHUNKING = settings(max_examples=40, deadline=None)


def cut_whole(spec: ChunkingSpec, data: bytes) -> list[int]:
    return BoundaryFinder(spec).cut(data, final=True)


def split(data: bytes, lengths: list[int]) -> list[bytes]:
    ends = list(itertools.accumulate(lengths))
    return [data[end - length : end] for end, length in zip(ends, lengths, strict=True)]


def cut_in_windows(
    spec: ChunkingSpec, data: bytes, fresh_sizes: list[int], *, eof_on_empty_read: bool
) -> tuple[list[int], bytes]:
    """Cut ``data`` the way the engine does: window by window, carrying the unconsumed tail.

    Each window is the carried tail plus the next ``fresh_sizes[i]`` bytes of input (sizes
    are used in turn, cyclically). With ``eof_on_empty_read`` the end of input is noticed
    only when a read returns nothing, as with a file whose size is a multiple of the window.
    Returns the chunk lengths and whatever was left uncut.
    """
    finder = BoundaryFinder(spec)
    lengths: list[int] = []
    carry = b""
    position = 0
    for fresh_size in itertools.cycle(fresh_sizes):
        fresh = data[position : position + fresh_size]
        position += len(fresh)
        window = carry + fresh
        final = len(fresh) == 0 if eof_on_empty_read else position >= len(data)
        cut = finder.cut(window, final=final)
        lengths.extend(cut)
        carry = window[sum(cut) :]
        if final:
            break
    return lengths, carry


# --- the pieces ---------------------------------------------------------------------------


@CHUNKING
@given(data=blob_bytes(), spec=chunking_specs())
def test_final_cut_pieces_join_back_to_the_input(data: bytes, spec: ChunkingSpec) -> None:
    lengths = cut_whole(spec, data)
    assert all(length > 0 for length in lengths)
    assert sum(lengths) == len(data)
    assert b"".join(split(data, lengths)) == data


@CHUNKING
@given(data=blob_bytes(), spec=chunking_specs())
def test_every_piece_but_the_last_is_between_min_and_max_size(data: bytes, spec: ChunkingSpec) -> None:
    lengths = cut_whole(spec, data)
    for length in lengths[:-1]:
        assert spec.min_size <= length <= spec.max_size
    if lengths:
        assert 1 <= lengths[-1] <= spec.max_size


@pytest.mark.parametrize("avg_size", [260, 1036, 4100, 5004])
def test_fastcdc_chunks_are_never_shorter_than_the_minimum_when_avg_is_not_a_multiple_of_8(
    avg_size: int,
) -> None:
    # A quarter of these averages is odd; the FastCDC cut loop steps two bytes at a time,
    # so an odd minimum once let through chunks one byte short of it (which every manifest
    # check then refused).
    spec = ChunkingSpec.fastcdc(avg_size)
    data = random.Random(avg_size).randbytes(2 * MIB)
    lengths = cut_whole(spec, data)
    assert len(lengths) > 100
    assert min(lengths[:-1]) >= spec.min_size


@CHUNKING
@given(data=blob_bytes(), spec=chunking_specs())
def test_a_non_final_cut_leaves_a_tail_of_at_most_max_size(data: bytes, spec: ChunkingSpec) -> None:
    lengths = BoundaryFinder(spec).cut(data, final=False)
    tail = len(data) - sum(lengths)
    assert 0 <= tail <= spec.max_size
    if data and spec.method == "fastcdc":
        # The last content-defined piece may continue into the next window: always carried.
        assert tail > 0
    # What was cut is exactly what a final cut of the same bytes starts with.
    assert lengths == cut_whole(spec, data)[: len(lengths)]


@CHUNKING
@given(
    data=blob_bytes(),
    spec=chunking_specs(),
    extra=st.lists(st.integers(min_value=0, max_value=1 << 18), min_size=1, max_size=5),
    eof_on_empty_read=st.booleans(),
)
def test_boundaries_are_the_same_whatever_the_window_sizes(
    data: bytes, spec: ChunkingSpec, extra: list[int], eof_on_empty_read: bool
) -> None:
    fresh_sizes = [2 * spec.max_size + more for more in extra]
    lengths, left = cut_in_windows(spec, data, fresh_sizes, eof_on_empty_read=eof_on_empty_read)
    assert left == b""
    assert lengths == cut_whole(spec, data)


def test_window_by_window_cutting_matches_on_a_multi_window_input() -> None:
    # A deterministic case that surely spans many windows, including an exact multiple.
    spec = ChunkingSpec.fastcdc(4096)
    data = random.Random(7).randbytes(64 * spec.max_size)
    for eof_on_empty_read in (False, True):
        lengths, left = cut_in_windows(spec, data, [2 * spec.max_size], eof_on_empty_read=eof_on_empty_read)
        assert left == b""
        assert lengths == cut_whole(spec, data)


@pytest.mark.parametrize("final", [False, True])
@pytest.mark.parametrize("spec", [ChunkingSpec.fastcdc(4096), ChunkingSpec.fixed(4096)])
def test_an_empty_window_has_no_chunks(spec: ChunkingSpec, final: bool) -> None:
    assert BoundaryFinder(spec).cut(b"", final=final) == []


@pytest.mark.parametrize("spec", [ChunkingSpec.fastcdc(4096), ChunkingSpec.fixed(5000)])
def test_bytes_bytearray_and_memoryview_windows_cut_alike(spec: ChunkingSpec) -> None:
    data = random.Random(3).randbytes(300_000)
    expected = cut_whole(spec, data)
    finder = BoundaryFinder(spec)
    assert finder.cut(bytearray(data), final=True) == expected
    assert finder.cut(memoryview(data), final=True) == expected
    assert finder.cut(memoryview(b"xx" + data)[2:], final=True) == expected


# --- content-defined locality ----------------------------------------------------------------

# How many chunks after the one hit by an insertion FastCDC may need to fall back into step.
# Measured over thousands of random inputs it is almost always 1 and never was more than 4.
RESYNC_CHUNKS = 8


@settings(max_examples=30, deadline=None)
@given(
    avg_size=st.integers(min_value=4096, max_value=16384),
    seed=st.integers(min_value=0, max_value=2**64),
    inserted=st.binary(min_size=1, max_size=256),
    data=st.data(),
)
def test_fastcdc_insertion_shifts_later_boundaries_by_the_inserted_length(
    avg_size: int, seed: int, inserted: bytes, data: st.DataObject
) -> None:
    spec = ChunkingSpec.fastcdc(avg_size)
    original = random.Random(seed).randbytes(48 * avg_size)
    at = data.draw(st.integers(min_value=avg_size, max_value=5 * avg_size), label="insert at")
    edited = original[:at] + inserted + original[at:]

    before = cut_whole(spec, original)
    after = cut_whole(spec, edited)
    before_digests = [digest_of(piece) for piece in split(original, before)]
    after_digests = [digest_of(piece) for piece in split(edited, after)]
    before_ends = list(itertools.accumulate(before))
    after_ends = set(itertools.accumulate(after))

    # Chunks that end before the insertion are untouched.
    untouched = sum(1 for end in before_ends if end < at)
    assert after_digests[:untouched] == before_digests[:untouched]

    # A few chunks past the insertion, every boundary is the old one shifted by the insert.
    resync = untouched + RESYNC_CHUNKS
    assert len(before) > resync + 10
    for end in before_ends[resync:]:
        assert end + len(inserted) in after_ends
    tail = before_digests[resync:]
    assert after_digests[-len(tail) :] == tail
    # So nearly every chunk of the old version is shared with the new one.
    shared = set(before_digests) & set(after_digests)
    assert len(shared) >= len(set(before_digests)) - RESYNC_CHUNKS - 1


@settings(max_examples=20, deadline=None)
@given(
    size=st.integers(min_value=4096, max_value=16384),
    seed=st.integers(min_value=0, max_value=2**64),
    data=st.data(),
)
def test_fixed_insertion_changes_every_later_chunk(size: int, seed: int, data: st.DataObject) -> None:
    spec = ChunkingSpec.fixed(size)
    rng = random.Random(seed)
    original = rng.randbytes(32 * size)
    at = data.draw(st.integers(min_value=size, max_value=5 * size), label="insert at")
    inserted = rng.randbytes(data.draw(st.integers(min_value=1, max_value=size - 1), label="inserted"))
    edited = original[:at] + inserted + original[at:]

    before_digests = [digest_of(piece) for piece in split(original, cut_whole(spec, original))]
    after_digests = [digest_of(piece) for piece in split(edited, cut_whole(spec, edited))]

    untouched = at // size
    assert after_digests[:untouched] == before_digests[:untouched]
    assert set(before_digests[untouched:]).isdisjoint(after_digests)


# --- fixed-size chunking --------------------------------------------------------------------


@CHUNKING
@given(spec=fixed_specs(), full=st.integers(min_value=0, max_value=20), rest=st.integers(min_value=0))
def test_fixed_chunks_are_all_the_size_but_a_shorter_last(spec: ChunkingSpec, full: int, rest: int) -> None:
    rest %= spec.max_size
    data = bytes(full * spec.max_size + rest)
    finder = BoundaryFinder(spec)
    assert finder.cut(data, final=True) == [spec.max_size] * full + ([rest] if rest else [])
    # Not at the end of input, the partial chunk is left to lead the next window.
    assert finder.cut(data, final=False) == [spec.max_size] * full


def test_fixed_spec_has_one_size() -> None:
    spec = ChunkingSpec.fixed(65536)
    assert (spec.method, spec.min_size, spec.avg_size, spec.max_size) == ("fixed", 65536, 65536, 65536)
    assert ChunkingSpec.fixed().max_size == 4 * MIB


# --- the spec -------------------------------------------------------------------------------


def test_default_fastcdc_spec_is_1_mib_with_a_quarter_minimum_and_4x_maximum() -> None:
    spec = ChunkingSpec.fastcdc()
    assert spec.avg_size == DEFAULT_AVG_SIZE == MIB
    assert (spec.method, spec.min_size, spec.max_size) == ("fastcdc", MIB // 4, 4 * MIB)


@given(avg_size=st.integers(min_value=256, max_value=4 * MIB))
def test_fastcdc_spec_derives_min_and_max_from_the_average(avg_size: int) -> None:
    spec = ChunkingSpec.fastcdc(avg_size)
    assert spec.avg_size == avg_size
    assert spec.max_size == 4 * avg_size
    assert avg_size // 4 - 1 <= spec.min_size <= avg_size // 4
    assert spec.min_size % 2 == 0  # FastCDC honours only an even minimum exactly
    assert spec.validated() is spec


@pytest.mark.parametrize(
    ("make", "value"),
    [
        (lambda: ChunkingSpec.fastcdc(255), "255"),
        (lambda: ChunkingSpec.fastcdc(4 * MIB + 1), str(4 * MIB + 1)),
        (lambda: ChunkingSpec.fastcdc(0), "0"),
        (lambda: ChunkingSpec.fastcdc(-4096), "-4096"),
        (lambda: ChunkingSpec.fastcdc(cast(Any, 4096.0)), "4096.0"),
        (lambda: ChunkingSpec("fastcdc", 63, 4096, 16384).validated(), "63"),
        (lambda: ChunkingSpec("fastcdc", MIB + 2, 2 * MIB, 8 * MIB).validated(), str(MIB + 2)),
        (lambda: ChunkingSpec("fastcdc", 1024, 4096, 1023).validated(), "1023"),
        (lambda: ChunkingSpec("fastcdc", 1024, 4096, 16 * MIB + 1).validated(), str(16 * MIB + 1)),
        (lambda: ChunkingSpec("fastcdc", 4096, 2048, 16384).validated(), "4096"),
        (lambda: ChunkingSpec("fastcdc", 1024, 8192, 4096).validated(), "8192"),
        (lambda: ChunkingSpec("fastcdc", 1024, cast(Any, True), 4096).validated(), "True"),
        (lambda: ChunkingSpec("fastcdc", 1025, 4100, 16400).validated(), "1025"),
        (lambda: ChunkingSpec(cast(Any, "rabin"), 1024, 4096, 16384).validated(), "rabin"),
        (lambda: ChunkingSpec.fixed(63), "63"),
        (lambda: ChunkingSpec.fixed(16 * MIB + 1), str(16 * MIB + 1)),
        (lambda: ChunkingSpec.fixed(cast(Any, True)), "True"),
        (lambda: ChunkingSpec("fixed", 4096, 4096, 8192).validated(), "fixed"),
    ],
)
def test_spec_rejects_unusable_sizes_naming_them(make: Any, value: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        make()
    assert value in str(caught.value)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ChunkingSpec.fastcdc(cast(Any, 4096.5)),
        lambda: ChunkingSpec.fixed(cast(Any, 1.5)),
        lambda: ChunkingSpec("fastcdc", 1024, cast(Any, 4096.0), 16384).validated(),
    ],
)
def test_a_size_that_is_not_a_whole_number_of_bytes_is_refused_as_such(make: Any) -> None:
    # Not "out of range": 4096.5 lies inside the range, it is just no number of bytes.
    with pytest.raises(InvalidParameterError, match="not a whole number of bytes"):
        make()


def test_finder_refuses_an_invalid_spec() -> None:
    with pytest.raises(InvalidParameterError):
        BoundaryFinder(ChunkingSpec("fastcdc", 16, 32, 64))


def test_finder_reports_its_spec() -> None:
    spec = ChunkingSpec.fastcdc(8192)
    assert BoundaryFinder(spec).spec == spec


def test_spec_json_form_records_method_and_sizes() -> None:
    assert ChunkingSpec.fastcdc(MIB).to_json() == {
        "method": "fastcdc",
        "min_size": MIB // 4,
        "avg_size": MIB,
        "max_size": 4 * MIB,
    }
    assert ChunkingSpec.fixed(8192).to_json() == {
        "method": "fixed",
        "min_size": 8192,
        "avg_size": 8192,
        "max_size": 8192,
    }


@CHUNKING
@given(data=blob_bytes(max_size=1 << 18), before=blob_bytes(max_size=1 << 16), spec=chunking_specs())
def test_a_reused_finder_cuts_like_a_fresh_one(data: bytes, before: bytes, spec: ChunkingSpec) -> None:
    # The engine keeps one finder per input; nothing of an earlier window may leak into a cut.
    finder = BoundaryFinder(spec)
    finder.cut(before, final=False)
    assert finder.cut(data, final=True) == BoundaryFinder(spec).cut(data, final=True)
