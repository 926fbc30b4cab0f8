"""Chunking that ends data segments at zero runs: the boundaries a disk image keeps across versions."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blobrep.core.chunking import DEFAULT_ZERO_RUN, MIB, BoundaryFinder, ChunkingSpec
from blobrep.core.codec import digest_of, is_zero
from blobrep.core.zero_runs import BLOCK_SIZE, zero_block_runs
from blobrep.errors import InvalidParameterError

ZERO_RUNS = settings(max_examples=60, deadline=None)
BLOCK = BLOCK_SIZE


@st.composite
def disk_like(draw: st.DrawFn, max_blocks: int = 96) -> bytes:
    """Bytes laid out like a disk image: data and zero runs, mostly whole blocks, some not.

    Zero runs start on the blob's block grid (as a filesystem leaves them) or, now and then,
    off it; a run of data may end mid-block.
    """
    pieces = draw(
        st.lists(
            st.tuples(
                st.sampled_from(("data", "zero", "zero", "ragged")),
                st.integers(min_value=1, max_value=24),
                st.integers(min_value=0, max_value=2**32),
            ),
            max_size=12,
        )
    )
    parts: list[bytes] = []
    blocks = 0
    for kind, count, seed in pieces:
        count = min(count, max_blocks - blocks)
        blocks += count
        rng = random.Random(seed)
        if kind == "data":
            parts.append(rng.randbytes(count * BLOCK))
        elif kind == "zero":
            parts.append(bytes(count * BLOCK))
        else:
            parts.append(rng.randbytes(rng.randrange(1, BLOCK)))
    return b"".join(parts)


def zero_run_specs() -> st.SearchStrategy[ChunkingSpec]:
    return st.builds(
        lambda avg, blocks: ChunkingSpec.fastcdc(avg, zero_run=blocks * BLOCK),
        st.sampled_from([1024, 4096, 8192, 16384, 32768]),
        st.integers(min_value=1, max_value=4),
    )


def cut_whole(spec: ChunkingSpec, data: bytes) -> list[int]:
    return BoundaryFinder(spec).cut(data, final=True)


def cut_in_windows(
    spec: ChunkingSpec, data: bytes, fresh_sizes: list[int], *, eof_on_empty_read: bool
) -> list[int]:
    """Cut window by window as the reader does: carried tail plus fresh bytes, at its offset."""
    finder = BoundaryFinder(spec)
    lengths: list[int] = []
    carry = b""
    position = 0
    offset = 0
    for fresh_size in itertools.cycle(fresh_sizes):
        fresh = data[position : position + fresh_size]
        position += len(fresh)
        window = carry + fresh
        final = len(fresh) == 0 if eof_on_empty_read else position >= len(data)
        cut = finder.cut(window, final=final, offset=offset)
        lengths.extend(cut)
        offset += sum(cut)
        carry = window[sum(cut) :]
        assert len(carry) < spec.max_size + (spec.zero_run or 0) + BLOCK
        if final:
            assert carry == b""
            return lengths
    raise AssertionError("unreachable")


def pieces(data: bytes, lengths: list[int]) -> list[tuple[int, bytes]]:
    ends = list(itertools.accumulate(lengths))
    return [(end - length, data[end - length : end]) for end, length in zip(ends, lengths, strict=True)]


# --- the scan ---------------------------------------------------------------------------------


@ZERO_RUNS
@given(data=disk_like(), offset=st.integers(min_value=0, max_value=3 * BLOCK))
def test_scan_finds_exactly_the_aligned_zero_blocks(data: bytes, offset: int) -> None:
    runs, scanned = zero_block_runs(data, len(data), offset)
    found = {start for run_start, run_end in runs for start in range(run_start, run_end, BLOCK)}
    first = (-offset) % BLOCK
    expected = {
        start
        for start in range(first, len(data) - BLOCK + 1, BLOCK)
        if data[start : start + BLOCK] == bytes(BLOCK)
    }
    assert found == expected
    # Runs are maximal: two never touch.
    assert all(left[1] < right[0] for left, right in itertools.pairwise(runs))
    assert len(data) - scanned < BLOCK or not data


def test_scan_of_a_window_shorter_than_a_block_finds_nothing() -> None:
    assert zero_block_runs(bytes(100), 100, 0)[0] == []
    assert zero_block_runs(bytes(BLOCK + 10), BLOCK + 10, 11)[0] == []


# --- the cut ----------------------------------------------------------------------------------


@ZERO_RUNS
@given(data=disk_like(), spec=zero_run_specs())
def test_chunks_end_where_zero_runs_begin_unless_the_run_is_short_and_near_the_chunk_start(
    data: bytes, spec: ChunkingSpec
) -> None:
    lengths = cut_whole(spec, data)
    assert sum(lengths) == len(data)
    assert all(0 < length <= spec.max_size for length in lengths)
    cut = pieces(data, lengths)
    starts = [at for at, _ in cut]
    assert spec.zero_run is not None
    long_run = max(spec.avg_size, spec.zero_run)
    for start, end in zero_block_runs(data, len(data), 0)[0]:
        if end - start < spec.zero_run:
            continue
        if start in starts:
            # A run where a chunk starts is zero chunks, up to its end.
            assert end in starts or end == len(data)
            assert all(is_zero(piece) for at, piece in cut if start <= at < end)
            continue
        # Otherwise it is data of the chunk it falls in: short, and near that chunk's start.
        holder = max(at for at in starts if at < start)
        assert end - start < long_run
        assert start - holder < spec.min_size
    # A data chunk below the minimum is the last, or the next chunk is zeros.
    for (_, piece), (_, after) in itertools.pairwise(cut):
        if len(piece) < spec.min_size and not is_zero(piece):
            assert is_zero(after)


@ZERO_RUNS
@given(
    data=disk_like(),
    spec=zero_run_specs(),
    extra=st.lists(st.integers(min_value=0, max_value=40_000), min_size=1, max_size=5),
    eof_on_empty_read=st.booleans(),
)
def test_boundaries_are_the_same_whatever_the_window_sizes(
    data: bytes, spec: ChunkingSpec, extra: list[int], eof_on_empty_read: bool
) -> None:
    assert spec.zero_run is not None
    least = 2 * (spec.max_size + spec.zero_run + BLOCK)
    fresh_sizes = [least + more for more in extra]
    assert cut_in_windows(spec, data, fresh_sizes, eof_on_empty_read=eof_on_empty_read) == cut_whole(
        spec, data
    )


def test_a_long_zero_run_across_many_windows_is_cut_as_in_one() -> None:
    spec = ChunkingSpec.fastcdc(4096, zero_run=2 * BLOCK)
    rng = random.Random(5)
    data = rng.randbytes(40_000) + bytes(50 * spec.max_size + 3 * BLOCK) + rng.randbytes(70_000)
    least = 2 * (spec.max_size + 2 * BLOCK + BLOCK)
    for eof_on_empty_read in (False, True):
        assert cut_in_windows(spec, data, [least], eof_on_empty_read=eof_on_empty_read) == cut_whole(
            spec, data
        )


def test_a_changed_block_changes_only_the_chunks_of_its_own_segment() -> None:
    # Files separated by free space, as in a filesystem image; FastCDC alone lets chunks
    # reach across the free space, so one changed block disturbs its neighbours' chunks too.
    spec = ChunkingSpec.fastcdc(32768, zero_run=BLOCK)
    rng = random.Random(11)
    files = [rng.randbytes(rng.randrange(1, 5) * BLOCK) for _ in range(200)]
    gaps = [bytes(rng.randrange(1, 4) * BLOCK) for _ in files]
    before = b"".join(file + gap for file, gap in zip(files, gaps, strict=True))
    files[100] = files[100][:BLOCK] + rng.randbytes(BLOCK) + files[100][2 * BLOCK :]
    after = b"".join(file + gap for file, gap in zip(files, gaps, strict=True))

    def new_bytes(chunking: ChunkingSpec) -> int:
        old = {digest_of(piece) for _, piece in pieces(before, cut_whole(chunking, before))}
        return sum(
            len(piece)
            for _, piece in pieces(after, cut_whole(chunking, after))
            if digest_of(piece) not in old
        )

    segmented = new_bytes(spec)
    assert segmented <= len(files[100])
    assert new_bytes(ChunkingSpec.fastcdc(32768)) > len(files[100])


def test_the_default_spec_ends_segments_at_one_block_of_zeros() -> None:
    spec = ChunkingSpec.default()
    assert (spec.method, spec.avg_size, spec.zero_run) == ("fastcdc", MIB, DEFAULT_ZERO_RUN)
    assert DEFAULT_ZERO_RUN == BLOCK
    assert spec.to_json()["zero_run"] == BLOCK
    assert "zero_run" not in ChunkingSpec.fastcdc().to_json()


def test_a_memoryview_window_cuts_like_its_bytes() -> None:
    spec = ChunkingSpec.default()
    data = random.Random(2).randbytes(3 * MIB) + bytes(MIB) + random.Random(3).randbytes(MIB + 5)
    assert BoundaryFinder(spec).cut(memoryview(b"x" + data)[1:], final=True) == cut_whole(spec, data)


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda: ChunkingSpec.fastcdc(4096, zero_run=4095), "4095"),
        (lambda: ChunkingSpec.fastcdc(4096, zero_run=6000), "6000"),
        (lambda: ChunkingSpec.fastcdc(4096, zero_run=0), "0"),
        (lambda: ChunkingSpec.fastcdc(4096, zero_run=2 * MIB), str(2 * MIB)),
        (lambda: ChunkingSpec.fastcdc(5000, zero_run=4096), "multiple of 4096"),
        (
            lambda: ChunkingSpec("fixed", 4096, 4096, 4096, 4096).validated(),
            "fixed chunking takes no zero run",
        ),
    ],
)
def test_unusable_zero_runs_are_refused_naming_the_value(make: object, said: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        make()  # type: ignore[operator]
    assert said in str(caught.value)


# --- holes: zeros known without being read ------------------------------------------------------


def cut_around_holes(spec: ChunkingSpec, data: bytes, window_size: int, least_hole: int) -> list[int]:
    """Cut as the reader does over a sparse file: aligned zero runs of ``least_hole`` or more
    are holes, passed to the finder as ``zeros`` and never read; the rest window by window."""
    holes = [
        (start, end)
        for start, end in zero_block_runs(data, len(data), 0)[0]
        if end - start >= least_hole and end < len(data)
    ]
    finder = BoundaryFinder(spec)
    lengths: list[int] = []
    carry = b""
    position = 0  # of the next byte to read
    while True:
        limit = position + window_size - len(carry)
        hole = next(((start, end) for start, end in holes if position <= start < limit), None)
        stop = hole[0] if hole else limit
        offset = position - len(carry)
        window = carry + data[position:stop]
        final = hole is None and stop >= len(data)
        zeros = hole[1] - hole[0] if hole else 0
        cut = finder.cut(window, final=final, offset=offset, zeros=zeros)
        lengths.extend(cut)
        if final:
            assert sum(cut) == len(window)
            return lengths
        tail = window + bytes(zeros)
        carry = tail[sum(cut) :]
        position = hole[1] if hole else stop


@ZERO_RUNS
@given(data=disk_like(max_blocks=160), spec=zero_run_specs(), extra=st.integers(min_value=0, max_value=9000))
def test_holes_given_as_known_zeros_cut_like_the_bytes_they_stand_for(
    data: bytes, spec: ChunkingSpec, extra: int
) -> None:
    assert spec.zero_run is not None
    window_size = 2 * (spec.max_size + spec.zero_run + BLOCK) + extra
    least_hole = BoundaryFinder(spec).least_known_zeros
    assert cut_around_holes(spec, data, window_size, least_hole) == cut_whole(spec, data)


def test_a_hole_longer_than_many_windows_is_cut_as_its_bytes() -> None:
    spec = ChunkingSpec.fastcdc(4096, zero_run=BLOCK)
    rng = random.Random(9)
    data = rng.randbytes(30_001) + bytes(3 * BLOCK - 30_001 % BLOCK) + bytes(90 * spec.max_size + 5 * BLOCK)
    data += rng.randbytes(50_000)
    assert cut_around_holes(spec, data, 2 * (spec.max_size + 2 * BLOCK), 2 * BLOCK) == cut_whole(spec, data)


@pytest.mark.parametrize(
    ("spec", "size", "zeros", "final"),
    [
        (ChunkingSpec.fastcdc(4096), 8192, 8192, False),  # no zero runs
        (ChunkingSpec.fastcdc(4096, zero_run=8192), 8192, 4096, False),  # fewer than a run
        (ChunkingSpec.fastcdc(4096, zero_run=4096), 8000, 8192, False),  # off the block grid
        (ChunkingSpec.fastcdc(4096, zero_run=4096), 8192, 8192, True),  # final
    ],
)
def test_known_zeros_the_finder_cannot_honour_are_refused(
    spec: ChunkingSpec, size: int, zeros: int, final: bool
) -> None:
    with pytest.raises(ValueError, match="known zeros"):
        BoundaryFinder(spec).cut(bytes(size), final=final, zeros=zeros)
