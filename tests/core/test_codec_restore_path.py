"""The restore path's codec helpers: decoding into reused buffers, and finding holes."""

from __future__ import annotations

import itertools
import os
import re

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from blobrep.core.codec import (
    MIN_HOLE,
    data_extents,
    decode_chunk,
    decode_chunk_into,
    digest_of,
    encode_chunk,
    frame_end,
    new_compressor,
    new_decompressor,
)
from blobrep.errors import ChunkCorruptError

REPLICA = "eastus2/replica-1"


def decode_into(frame: bytes, plain: bytes, out: bytearray, **override: int | str) -> memoryview:
    return decode_chunk_into(
        frame,
        memoryview(out),
        digest=str(override.get("digest", digest_of(plain))),
        length=int(override.get("length", len(plain))),
        stored_length=int(override.get("stored_length", len(frame))),
        decompressor=new_decompressor(),
        replica=REPLICA,
    )


@settings(max_examples=60, deadline=None)
@given(plain=st.binary(max_size=70_000), slack=st.integers(min_value=0, max_value=5000))
def test_decoding_into_a_larger_reused_buffer_gives_the_plain_bytes(plain: bytes, slack: int) -> None:
    frame = encode_chunk(plain, new_compressor(1))
    out = bytearray(b"\xaa" * (len(plain) + slack))  # stale bytes from an earlier chunk

    view = decode_into(frame, plain, out)

    assert view.tobytes() == plain


def test_decoding_into_rejects_a_truncated_frame_naming_chunk_and_replica() -> None:
    plain = os.urandom(5000) + bytes(20000)
    frame = encode_chunk(plain, new_compressor(1))

    with pytest.raises(ChunkCorruptError) as caught:
        decode_into(frame[:-7], plain, bytearray(len(plain)), stored_length=len(frame) - 7)

    assert caught.value.digest == digest_of(plain)
    assert REPLICA in str(caught.value)


def test_decoding_into_rejects_bytes_of_another_chunk() -> None:
    plain = b"the chunk the manifest names" * 100
    other = b"a different chunk altogether" * 100
    frame = encode_chunk(other, new_compressor(1))

    with pytest.raises(ChunkCorruptError, match="hash to"):
        decode_into(frame, plain, bytearray(len(plain)))


def test_decoding_into_rejects_a_stored_length_that_does_not_match() -> None:
    plain = b"x" * 1000
    frame = encode_chunk(plain, new_compressor(1))

    with pytest.raises(ChunkCorruptError, match="stored size"):
        decode_into(frame + b"junk", plain, bytearray(1000), stored_length=len(frame))


def test_decoding_into_matches_the_strict_decoder_on_a_real_frame() -> None:
    plain = os.urandom(3000) + b"text " * 4000
    frame = zstandard.ZstdCompressor(level=3, write_content_size=True).compress(plain)

    assert decode_into(frame, plain, bytearray(len(plain))).tobytes() == plain


def _apply(extents: list[tuple[int, int]], data: bytes) -> bytes:
    """What a zero-filled file holds after writing only ``extents`` of ``data``."""
    out = bytearray(len(data))
    for start, end in extents:
        out[start:end] = data[start:end]
    return bytes(out)


runs = st.lists(
    st.tuples(st.booleans(), st.integers(min_value=1, max_value=3 * MIN_HOLE)), min_size=0, max_size=12
)


@settings(max_examples=150, deadline=None)
@given(layout=runs, seed=st.integers(min_value=0, max_value=2**32))
def test_writing_only_the_extents_reproduces_the_chunk(layout: list[tuple[bool, int]], seed: int) -> None:
    data = b"".join(bytes(length) if zero else os.urandom(length) for zero, length in layout)

    extents = data_extents(data)

    assert _apply(extents, data) == data
    assert all(0 <= start < end <= len(data) for start, end in extents)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(extents))


def _extents_by_regex(data: bytes, size: int) -> list[tuple[int, int]]:
    """What data_extents must return: everything but the zero runs of MIN_HOLE or more."""
    extents: list[tuple[int, int]] = []
    start = 0
    for run in re.finditer(b"\\x00{%d,}" % MIN_HOLE, data[:size]):
        if run.start() > start:
            extents.append((start, run.start()))
        start = run.end()
    if start < size:
        extents.append((start, size))
    return extents


page_aligned_runs = st.lists(
    st.tuples(
        st.booleans(),
        st.one_of(
            st.integers(min_value=1, max_value=3 * MIN_HOLE),
            st.sampled_from([4096, MIN_HOLE // 2, MIN_HOLE - 1, MIN_HOLE, MIN_HOLE + 1, 2 * MIN_HOLE]),
        ),
    ),
    min_size=0,
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(layout=page_aligned_runs, cut=st.integers(min_value=0, max_value=2**20), seed=st.binary(min_size=1))
def test_extents_leave_out_exactly_the_zero_runs_of_min_hole_or_more(
    layout: list[tuple[bool, int]], cut: int, seed: bytes
) -> None:
    # Non-zero runs that start or end with zero bytes, so that runs meet mid-page.
    filler = (seed.replace(b"\x00", b"\x01") + b"\x00") * (3 * MIN_HOLE // (len(seed) + 1) + 1)
    data = bytearray(b"".join(bytes(length) if zero else filler[:length] for zero, length in layout))
    size = min(cut, len(data))

    assert data_extents(data, size) == _extents_by_regex(bytes(data), size)
    assert data_extents(data) == _extents_by_regex(bytes(data), len(data))


def test_long_zero_runs_inside_a_chunk_are_not_written() -> None:
    data = b"head" + bytes(4 * MIN_HOLE) + b"tail"

    extents = data_extents(data)

    assert extents == [(0, 4), (4 + 4 * MIN_HOLE, len(data))]


def test_short_zero_runs_are_written_with_their_neighbours() -> None:
    data = b"a" + bytes(MIN_HOLE - 1) + b"b"

    assert data_extents(data) == [(0, len(data))]


def test_extents_respect_the_size_of_a_larger_buffer() -> None:
    buffer = bytearray(b"data" + bytes(2 * MIN_HOLE) + b"stale bytes past the chunk")
    size = 4 + 2 * MIN_HOLE

    assert data_extents(buffer, size) == [(0, 4)]


@pytest.mark.parametrize(
    "trailer", [b"\x00", b"garbage after the frame", b"second"], ids=["byte", "text", "frame"]
)
@pytest.mark.parametrize("checksum", [False, True])
def test_both_decoders_refuse_bytes_after_the_frame_even_when_the_stored_length_counts_them(
    trailer: bytes, checksum: bool
) -> None:
    plain = os.urandom(20_000) + bytes(300_000) + os.urandom(50_000)
    compressor = zstandard.ZstdCompressor(level=3, write_content_size=True, write_checksum=checksum)
    frame = compressor.compress(plain)
    extra = compressor.compress(trailer) if trailer == b"second" else trailer
    stored = frame + extra
    with pytest.raises(ChunkCorruptError, match="follow the zstd frame"):
        decode_into(stored, plain, bytearray(len(plain)), stored_length=len(stored))
    with pytest.raises(ChunkCorruptError, match="follow the zstd frame"):
        decode_chunk(
            stored,
            digest=digest_of(plain),
            length=len(plain),
            stored_length=len(stored),
            decompressor=new_decompressor(),
            replica=REPLICA,
        )


@settings(max_examples=60, deadline=None)
@given(plain=st.binary(max_size=300_000), level=st.integers(min_value=1, max_value=9), checksum=st.booleans())
def test_frame_end_finds_the_end_of_every_frame(plain: bytes, level: int, checksum: bool) -> None:
    frame = zstandard.ZstdCompressor(level=level, write_content_size=True, write_checksum=checksum).compress(
        plain
    )
    assert frame_end(frame) == len(frame)
    assert frame_end(frame + b"tail") == len(frame)
    with pytest.raises(ValueError, match="cut short"):
        frame_end(frame[:-1])
