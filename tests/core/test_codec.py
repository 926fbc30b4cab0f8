"""The chunk codec: digests, zstd frames, zero detection, and verification on read."""

from __future__ import annotations

import random
import re
from typing import Any, cast

import pytest
import xxhash
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from blobrep.core.codec import (
    DEFAULT_LEVEL,
    MAX_LEVEL,
    MIN_LEVEL,
    decode_chunk,
    digest_of,
    encode_chunk,
    hash_zeros,
    is_zero,
    max_stored_length,
    new_blob_hasher,
    new_compressor,
    new_decompressor,
    validate_level,
)
from blobrep.core.keys import is_digest
from blobrep.errors import ChunkCorruptError, InvalidParameterError
from tests.core.strategies import blob_bytes

REPLICA = "westcentralus/replica-2"
CODEC = settings(max_examples=60, deadline=None)

small_chunks = st.one_of(st.binary(max_size=4096), blob_bytes(max_size=1 << 17))


@pytest.fixture(scope="module")
def compressor() -> zstandard.ZstdCompressor:
    return new_compressor(DEFAULT_LEVEL)


@pytest.fixture(scope="module")
def decompressor() -> zstandard.ZstdDecompressor:
    return new_decompressor()


def decode(
    frame: bytes,
    plain: bytes,
    decompressor: zstandard.ZstdDecompressor,
    *,
    digest: str | None = None,
    length: int | None = None,
    stored_length: int | None = None,
) -> bytes:
    """decode_chunk with the manifest's values for ``plain`` unless overridden."""
    return decode_chunk(
        frame,
        digest=digest_of(plain) if digest is None else digest,
        length=len(plain) if length is None else length,
        stored_length=len(frame) if stored_length is None else stored_length,
        decompressor=decompressor,
        replica=REPLICA,
    )


def assert_corrupt(caught: pytest.ExceptionInfo[ChunkCorruptError], digest: str) -> None:
    """The error names the chunk and the replica, as a reader failing over needs."""
    error = caught.value
    assert error.digest == digest
    assert error.replica == REPLICA
    assert digest in str(error)
    assert REPLICA in str(error)
    assert error.reason


# --- round trip -----------------------------------------------------------------------------


@CODEC
@given(plain=small_chunks)
def test_encoded_chunk_decodes_to_the_same_bytes(
    plain: bytes, compressor: zstandard.ZstdCompressor, decompressor: zstandard.ZstdDecompressor
) -> None:
    frame = encode_chunk(plain, compressor)
    assert decode(frame, plain, decompressor) == plain


@settings(max_examples=20, deadline=None)
@given(plain=st.binary(max_size=2048), level=st.integers(min_value=MIN_LEVEL, max_value=MAX_LEVEL))
def test_every_accepted_level_round_trips(plain: bytes, level: int) -> None:
    frame = encode_chunk(plain, new_compressor(level))
    assert decode(frame, plain, new_decompressor()) == plain


@CODEC
@given(plain=small_chunks)
def test_stored_form_is_one_zstd_frame_that_records_the_plain_length(
    plain: bytes, compressor: zstandard.ZstdCompressor
) -> None:
    frame = encode_chunk(plain, compressor)
    assert zstandard.frame_content_size(frame) == len(plain)
    # Any zstd tool can read a stored chunk: nothing is wrapped around the frame.
    assert zstandard.ZstdDecompressor().decompress(frame, allow_extra_data=False) == plain


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_buffers_encode_like_bytes(
    kind: type[Any], compressor: zstandard.ZstdCompressor, decompressor: zstandard.ZstdDecompressor
) -> None:
    plain = random.Random(1).randbytes(10_000) + bytes(10_000)
    frame = encode_chunk(kind(plain), compressor)
    assert frame == encode_chunk(plain, compressor)
    assert decode(frame, plain, decompressor) == plain


def test_compressible_chunks_are_stored_smaller(compressor: zstandard.ZstdCompressor) -> None:
    plain = b"all work and no play makes jack a dull boy\n" * 5000
    assert len(encode_chunk(plain, compressor)) < len(plain) // 20


@settings(max_examples=30, deadline=None)
@given(
    size=st.one_of(st.integers(min_value=0, max_value=1 << 16), st.sampled_from([1 << 20, 4 << 20])),
    seed=st.integers(min_value=0, max_value=2**32),
    level=st.sampled_from([MIN_LEVEL, 3, MAX_LEVEL]),
)
def test_incompressible_chunks_fit_within_max_stored_length(size: int, seed: int, level: int) -> None:
    # The manifest parser refuses stored lengths above this bound: a real chunk must fit.
    plain = random.Random(seed).randbytes(size)
    assert len(encode_chunk(plain, new_compressor(level))) <= max_stored_length(size)


# --- rejection on read ----------------------------------------------------------------------


@CODEC
@given(plain=small_chunks, data=st.data())
def test_a_flipped_byte_never_decodes_to_other_bytes(
    plain: bytes,
    data: st.DataObject,
    compressor: zstandard.ZstdCompressor,
    decompressor: zstandard.ZstdDecompressor,
) -> None:
    # zstd has spare bits (window size, padding) where a flip changes nothing that is read
    # back; what must never happen is that a flip yields different plain bytes.
    frame = bytearray(encode_chunk(plain, compressor))
    position = data.draw(st.integers(min_value=0, max_value=len(frame) - 1), label="position")
    frame[position] ^= data.draw(st.integers(min_value=1, max_value=255), label="xor")
    digest = digest_of(plain)
    try:
        decoded = decode(bytes(frame), plain, decompressor)
    except ChunkCorruptError as error:
        assert error.digest == digest
        assert error.replica == REPLICA
    else:
        assert decoded == plain


@CODEC
@given(
    size=st.integers(min_value=64, max_value=1 << 16),
    seed=st.integers(min_value=0, max_value=2**32),
    data=st.data(),
)
def test_a_flipped_byte_in_the_stored_data_is_rejected(
    size: int,
    seed: int,
    data: st.DataObject,
    compressor: zstandard.ZstdCompressor,
    decompressor: zstandard.ZstdDecompressor,
) -> None:
    plain = random.Random(seed).randbytes(size)
    frame = bytearray(encode_chunk(plain, compressor))
    # Random bytes do not compress: the second half of the frame is the chunk's data itself,
    # and the first four bytes are the zstd magic number.
    position = data.draw(
        st.one_of(
            st.integers(min_value=len(frame) - size // 2, max_value=len(frame) - 1),
            st.integers(min_value=0, max_value=3),
        ),
        label="position",
    )
    frame[position] ^= data.draw(st.integers(min_value=1, max_value=255), label="xor")
    with pytest.raises(ChunkCorruptError) as caught:
        decode(bytes(frame), plain, decompressor)
    assert_corrupt(caught, digest_of(plain))


@CODEC
@given(plain=st.binary(min_size=1, max_size=4096), data=st.data())
def test_a_truncated_frame_is_rejected(
    plain: bytes,
    data: st.DataObject,
    compressor: zstandard.ZstdCompressor,
    decompressor: zstandard.ZstdDecompressor,
) -> None:
    frame = encode_chunk(plain, compressor)
    cut = data.draw(st.integers(min_value=0, max_value=len(frame) - 1), label="cut")
    truncated = frame[:cut]
    # Whether the manifest's stored length agrees with the short frame or not.
    for stored_length in (len(truncated), len(frame)):
        with pytest.raises(ChunkCorruptError) as caught:
            decode(truncated, plain, decompressor, stored_length=stored_length)
        assert_corrupt(caught, digest_of(plain))


@pytest.mark.parametrize(
    "extra",
    [b"\x00", b"garbage after the frame", "second frame"],
    ids=["one-byte", "garbage", "second-frame"],
)
def test_bytes_after_the_frame_are_rejected(
    extra: bytes | str,
    compressor: zstandard.ZstdCompressor,
    decompressor: zstandard.ZstdDecompressor,
) -> None:
    plain = b"the chunk itself " * 100
    frame = encode_chunk(plain, compressor)
    trailer = encode_chunk(b"more", compressor) if isinstance(extra, str) else extra
    stored = frame + trailer
    with pytest.raises(ChunkCorruptError) as caught:
        decode(stored, plain, decompressor)
    assert_corrupt(caught, digest_of(plain))


@pytest.mark.parametrize("delta", [-1, 1, 1000])
def test_a_stored_length_other_than_the_manifests_is_rejected(
    delta: int, compressor: zstandard.ZstdCompressor, decompressor: zstandard.ZstdDecompressor
) -> None:
    plain = random.Random(2).randbytes(5000)
    frame = encode_chunk(plain, compressor)
    with pytest.raises(ChunkCorruptError) as caught:
        decode(frame, plain, decompressor, stored_length=len(frame) + delta)
    assert_corrupt(caught, digest_of(plain))
    assert str(len(frame) + delta) in str(caught.value)


@pytest.mark.parametrize("delta", [-1, 1, 1 << 30])
def test_a_plain_length_other_than_the_manifests_is_rejected(
    delta: int, compressor: zstandard.ZstdCompressor, decompressor: zstandard.ZstdDecompressor
) -> None:
    plain = random.Random(3).randbytes(5000)
    frame = encode_chunk(plain, compressor)
    with pytest.raises(ChunkCorruptError) as caught:
        decode(frame, plain, decompressor, length=len(plain) + delta)
    assert_corrupt(caught, digest_of(plain))


def test_a_frame_that_hides_its_length_is_rejected(decompressor: zstandard.ZstdDecompressor) -> None:
    # Without the content size in the header the size could not be checked before
    # decompressing, so such a frame is refused even though it decodes to the right bytes.
    plain = b"no size in the header " * 50
    frame = zstandard.ZstdCompressor(write_content_size=False).compress(plain)
    with pytest.raises(ChunkCorruptError) as caught:
        decode(frame, plain, decompressor)
    assert_corrupt(caught, digest_of(plain))


def test_a_frame_claiming_more_bytes_than_the_manifest_is_rejected(
    compressor: zstandard.ZstdCompressor, decompressor: zstandard.ZstdDecompressor
) -> None:
    # A hostile store hands out a frame of 64 MiB of zeros for a 4 KiB chunk.
    plain = random.Random(4).randbytes(4096)
    bomb = encode_chunk(bytes(64 << 20), compressor)
    with pytest.raises(ChunkCorruptError) as caught:
        decode(bomb, plain, decompressor)
    assert_corrupt(caught, digest_of(plain))


@CODEC
@given(plain=st.binary(max_size=2048), other=st.binary(max_size=2048))
def test_the_frame_of_another_chunk_is_rejected(
    plain: bytes,
    other: bytes,
    compressor: zstandard.ZstdCompressor,
    decompressor: zstandard.ZstdDecompressor,
) -> None:
    if other == plain:
        other += b"\x01"
    frame = encode_chunk(other, compressor)
    # Even when the manifest's lengths happen to match the other chunk's frame.
    with pytest.raises(ChunkCorruptError) as caught:
        decode(frame, plain, decompressor, length=len(other))
    assert_corrupt(caught, digest_of(plain))
    assert "hash" in caught.value.reason


def test_a_frame_of_another_chunk_with_the_same_length_is_rejected(
    compressor: zstandard.ZstdCompressor, decompressor: zstandard.ZstdDecompressor
) -> None:
    rng = random.Random(5)
    plain, other = rng.randbytes(8192), rng.randbytes(8192)
    with pytest.raises(ChunkCorruptError) as caught:
        decode(encode_chunk(other, compressor), plain, decompressor)
    assert_corrupt(caught, digest_of(plain))
    assert digest_of(other) in caught.value.reason


@CODEC
@given(garbage=st.binary(max_size=512), plain=st.binary(max_size=512))
def test_garbage_is_rejected(garbage: bytes, plain: bytes, decompressor: zstandard.ZstdDecompressor) -> None:
    if garbage[:4] == b"\x28\xb5\x2f\xfd":
        garbage = b"\x00" + garbage
    with pytest.raises(ChunkCorruptError) as caught:
        decode(garbage, plain, decompressor)
    assert_corrupt(caught, digest_of(plain))


# --- zero chunks ------------------------------------------------------------------------------

ZERO_SIZES = st.one_of(
    st.integers(min_value=1, max_value=256),
    st.integers(min_value=1, max_value=(1 << 21) + 100),
)


@settings(max_examples=100, deadline=None)
@given(size=ZERO_SIZES, data=st.data())
def test_is_zero_is_false_for_one_non_zero_byte_anywhere(size: int, data: st.DataObject) -> None:
    position = data.draw(
        st.one_of(
            st.integers(min_value=0, max_value=size - 1),
            st.sampled_from([0, min(63, size - 1), min(64, size - 1), size - 1]),
        ),
        label="position",
    )
    value = data.draw(st.integers(min_value=1, max_value=255), label="value")
    chunk = bytearray(size)
    chunk[position] = value
    assert not is_zero(chunk)
    assert not is_zero(bytes(chunk))
    assert not is_zero(memoryview(chunk))


@settings(max_examples=30, deadline=None)
@given(size=st.one_of(st.integers(min_value=0, max_value=300), ZERO_SIZES))
def test_is_zero_is_true_for_all_zero_bytes(size: int) -> None:
    assert is_zero(bytes(size))
    assert is_zero(bytearray(size))
    assert is_zero(memoryview(bytes(size + 7))[7:])


@given(plain=st.binary(max_size=1000))
def test_is_zero_agrees_with_counting_zero_bytes(plain: bytes) -> None:
    assert is_zero(plain) == (plain.count(0) == len(plain))


def test_is_zero_reads_typed_buffers_bytewise() -> None:
    from array import array

    assert is_zero(memoryview(array("Q", [0] * 1000)))
    assert not is_zero(memoryview(array("Q", [0] * 999 + [1 << 56])))


@pytest.mark.parametrize("length", [0, 1, 4096, 1 << 20, (1 << 20) + 1, (3 << 20) + 5])
def test_hashing_zeros_matches_hashing_that_many_zero_bytes(length: int) -> None:
    hasher = new_blob_hasher()
    hasher.update(b"before")
    hash_zeros(hasher, length)
    hasher.update(b"after")
    assert hasher.hexdigest() == digest_of(b"before" + bytes(length) + b"after")


# --- digests and levels ---------------------------------------------------------------------


@given(plain=st.binary(max_size=10_000))
def test_digest_is_xxh3_128_as_32_lower_case_hex(plain: bytes) -> None:
    digest = digest_of(plain)
    assert re.fullmatch(r"[0-9a-f]{32}", digest)
    assert is_digest(digest)
    assert digest == xxhash.xxh3_128_hexdigest(plain)
    assert digest == digest_of(bytearray(plain)) == digest_of(memoryview(plain))


def test_digests_of_different_chunks_differ() -> None:
    assert digest_of(b"a") != digest_of(b"b")
    assert digest_of(b"") != digest_of(b"\x00")


@given(parts=st.lists(st.binary(max_size=3000), max_size=8))
def test_blob_hasher_fed_in_pieces_matches_the_digest_of_the_whole(parts: list[bytes]) -> None:
    hasher = new_blob_hasher()
    for part in parts:
        hasher.update(part)
    assert hasher.hexdigest() == digest_of(b"".join(parts))


@pytest.mark.parametrize("level", [MIN_LEVEL, DEFAULT_LEVEL, 9, MAX_LEVEL])
def test_levels_in_range_are_accepted(level: int) -> None:
    assert validate_level(level) == level
    new_compressor(level)


@pytest.mark.parametrize("level", [0, -1, MAX_LEVEL + 1, 22, True, 1.0, "1", None])
def test_levels_out_of_range_are_rejected_naming_the_range(level: object) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        validate_level(cast(int, level))
    assert f"{MIN_LEVEL} to {MAX_LEVEL}" in str(caught.value)
    assert repr(level) in str(caught.value)
    with pytest.raises(InvalidParameterError):
        new_compressor(cast(int, level))
