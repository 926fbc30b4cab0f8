"""``Content-Digest`` on a disk's upload: parsed as RFC 9530 writes it, and the body checked
against it (in-process, over a stream), so a body damaged on its way never becomes a disk."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blobrep.daemon.content_digest import ExpectedDigest, checked, parse_content_digest
from blobrep.errors import InvalidParameterError, SourceError


def header(algorithm: str, data: bytes) -> str:
    digest = hashlib.new(algorithm.replace("-", ""), data).digest()
    return f"{algorithm}=:{base64.b64encode(digest).decode()}:"


@given(st.binary(max_size=2000), st.sampled_from(["sha-256", "sha-512"]))
def test_a_digest_the_rfc_way_parses_to_its_algorithm_and_bytes(data: bytes, algorithm: str) -> None:
    parsed = parse_content_digest(header(algorithm, data))
    assert parsed == ExpectedDigest(algorithm, hashlib.new(algorithm.replace("-", ""), data).digest())
    assert parse_content_digest(parsed.said()) == parsed


def test_the_strongest_checked_algorithm_wins_and_unknown_ones_are_passed_over() -> None:
    both = f"md5=:AAAAAAAAAAAAAAAAAAAAAA==:, {header('sha-256', b'x')}, {header('sha-512', b'x')}"
    parsed = parse_content_digest(both)
    assert parsed is not None and parsed.algorithm == "sha-512"
    assert parse_content_digest(None) is None


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("sha-256=abc", "is not a list of algorithm=:base64: members"),
        ("sha-256=:not base64!:", "is not a list of algorithm=:base64: members"),
        ("sha-256=:AAA:", "does not hold base64"),
        ("sha-256=:AAAA:", "holds 3 bytes where a sha-256 digest has 32"),
        (
            "md5=:AAAAAAAAAAAAAAAAAAAAAA==:",
            "names md5, none of which blobrep checks: send sha-256 or sha-512",
        ),
        ("", "is not a list"),
    ],
)
def test_a_header_that_cannot_be_checked_is_refused_naming_what_would_be(value: str, words: str) -> None:
    with pytest.raises(InvalidParameterError, match=words.replace("(", r"\(")):
        parse_content_digest(value)


async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def read_all(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([piece async for piece in stream])


@pytest.mark.parametrize("size", [1, 4096, 3 * 1024 * 1024])
async def test_a_body_that_matches_passes_through_whole(size: int) -> None:
    data = bytes(range(256)) * 10_000  # 2.4 MiB: batches of 1 MiB, and a last short one
    expected = parse_content_digest(header("sha-256", data))
    assert expected is not None
    assert await read_all(checked(pieces(data, size), expected, "the upload", lambda _: True)) == data


async def test_a_body_that_differs_fails_before_its_end_and_says_both_digests() -> None:
    data = b"a disk" * 100_000
    expected = parse_content_digest(header("sha-512", data))
    assert expected is not None
    damaged = data[:1000] + b"X" + data[1001:]
    with pytest.raises(SourceError) as caught:
        await read_all(checked(pieces(damaged, 65536), expected, "the upload of X", lambda _: True))
    message = str(caught.value)
    assert message.startswith("the upload of X does not match its Content-Digest: the 600000 bytes received")
    assert header("sha-512", damaged) in message and expected.said() in message
    assert message.endswith("nothing of it was kept, send it again")


async def test_a_short_body_is_left_to_the_length_check() -> None:
    data = b"0123456789" * 1000
    expected = parse_content_digest(header("sha-256", data))
    assert expected is not None
    short = await read_all(
        checked(pieces(data[:500], 100), expected, "u", lambda received: received == len(data))
    )
    assert short == data[:500], "no digest error: the length check names a short body"
