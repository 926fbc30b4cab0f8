"""Packs: filling them, and the table of contents each one ends with."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blobrep.core.codec import digest_of
from blobrep.core.packs import FOOTER_SIZE, MAX_PACK_SIZE, PackBuilder, PackEntry, PackRef, read_table
from blobrep.errors import ManifestError

DIGEST_A = "0123456789abcdef0123456789abcdef"
DIGEST_B = "fedcba9876543210fedcba9876543210"


def name(index: int) -> str:
    return f"{index:032x}"


@settings(max_examples=100, deadline=None)
@given(
    target=st.integers(min_value=1, max_value=5000),
    frames=st.lists(st.binary(min_size=1, max_size=3000), max_size=20),
)
def test_the_builder_keeps_every_frame_whole_in_order_and_lists_it(target: int, frames: list[bytes]) -> None:
    builder = PackBuilder(target=target)
    closed = [
        builder.close() if builder.add(name(index), 2 * len(frame), frame) else None
        for index, frame in enumerate(frames)
    ]
    packs = [pack for pack in [*closed, builder.close()] if pack is not None]
    assert builder.pending == 0 and builder.close() is None
    located: dict[str, tuple[bytes, int]] = {}
    for pack in packs:
        assert pack.ref == PackRef(digest_of(pack.joined()), len(pack.joined()))
        entries = read_table(pack.joined(), "pack")
        assert {entry.digest: entry.offset for entry in entries} == pack.offsets
        # A pack's frames stop at the first one that reaches the target, never later.
        assert max(pack.offsets.values()) < target
        located.update({entry.digest: (pack.joined(), entry.offset) for entry in entries})
        assert all(entry.length == 2 * entry.stored_length for entry in entries)
    for index, frame in enumerate(frames):
        data, offset = located[name(index)]
        assert bytes(data[offset : offset + len(frame)]) == frame
    frame_bytes = [sum(entry.stored_length for entry in read_table(pack.joined(), "p")) for pack in packs]
    assert sum(frame_bytes) == sum(map(len, frames))
    assert all(size >= target for size in frame_bytes[:-1])


def test_the_builder_adds_a_chunk_once_per_pack() -> None:
    builder = PackBuilder(target=100)
    assert not builder.add(DIGEST_A, 10, b"x" * 10)
    assert not builder.add(DIGEST_A, 10, b"x" * 10)
    assert builder.pending == 10
    assert builder.add(DIGEST_B, 90, b"y" * 90)
    closed = builder.close()
    assert closed is not None
    expected = [PackEntry(DIGEST_A, 10, 0, 10), PackEntry(DIGEST_B, 90, 10, 90)]
    assert read_table(closed.joined(), "p") == expected


@pytest.mark.parametrize("target", [0, MAX_PACK_SIZE])
def test_the_builder_refuses_a_target_it_could_overrun(target: int) -> None:
    with pytest.raises(ValueError, match="pack target"):
        PackBuilder(target=target)


def one_pack() -> bytearray:
    builder = PackBuilder(target=1000)
    builder.add(DIGEST_A, 300, b"a" * 100)
    builder.add(DIGEST_B, 50, b"b" * 40)
    closed = builder.close()
    assert closed is not None
    return bytearray(closed.joined())


def footer(data: bytearray) -> tuple[bytes, int, int, int, int]:
    values: tuple[bytes, int, int, int, int] = struct.unpack("<4sHHII", data[-FOOTER_SIZE:])
    return values


def with_footer(data: bytearray, **changes: int | bytes) -> bytearray:
    magic, version, spare, count, start = footer(data)
    fields = {"magic": magic, "version": version, "spare": spare, "count": count, "start": start} | changes
    return data[:-FOOTER_SIZE] + struct.pack("<4sHHII", *fields.values())


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda data: data[:10], "too short"),
        (lambda data: data[:-1], "no pack table"),
        (lambda data: data + b"x", "no pack table"),
        (lambda data: with_footer(data, magic=b"XXXX"), "no pack table"),
        (lambda data: with_footer(data, version=2), "no pack table"),
        (lambda data: with_footer(data, count=0), "does not end the pack"),
        (lambda data: with_footer(data, count=3), "does not end the pack"),
        (lambda data: with_footer(data, start=139), "does not end the pack"),
        (lambda data: b"z" + with_footer(data, start=141), "frames end at 140"),
        (lambda data: data[:156] + struct.pack("<I", 0) + data[160:], "out of range"),
        (lambda data: data[:160] + struct.pack("<I", 10**6) + data[164:], "out of range"),
    ],
)
def test_a_table_that_does_not_add_up_is_refused(damage: object, words: str) -> None:
    data = one_pack()
    assert footer(data)[3:] == (2, 140)
    with pytest.raises(ManifestError, match=words) as caught:
        read_table(damage(data), "packs/ab/x in r1")  # type: ignore[operator]
    assert "packs/ab/x in r1" in str(caught.value)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_never_read_as_more_than_a_checked_table(data: bytes) -> None:
    try:
        entries = read_table(data, "p")
    except ManifestError:
        return
    assert sum(entry.stored_length for entry in entries) + 24 * len(entries) + FOOTER_SIZE == len(data)
