"""``Content-Digest`` (RFC 9530) on a disk's upload: the bytes received checked against the
digest the client computed before it sent them.

Every chunk blobrep stores is checked against its own digest, but that only proves the store
holds what the daemon received. A client that sends ``Content-Digest: sha-256=:<base64>:``
gets the rest of the way: the daemon hashes the body as it arrives and, if the two differ,
fails the upload before the disk is committed, so a body damaged on its way (a proxy, a flaky
link, a truncating client) never becomes a version. The check is the client's to ask for;
without the header nothing is hashed.

``sha-256`` and ``sha-512`` are checked (the algorithms RFC 9530 registers as active). A
header naming only other algorithms, or not written as the RFC's dictionary of byte
sequences, is refused before a byte of the body is read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import anyio.to_thread

from blobrep.errors import InvalidParameterError, SourceError

if TYPE_CHECKING:
    from collections.abc import AsyncIterable

#: The algorithms checked, by their RFC 9530 names, with their digest lengths in bytes.
ALGORITHMS: Final = {"sha-512": 64, "sha-256": 32}

#: Bytes gathered before they are hashed in a worker thread, off the event loop.
_BATCH: Final = 1024 * 1024

_MEMBER: Final = re.compile(r"\s*([a-z][a-z0-9_.*-]*)\s*=\s*:([A-Za-z0-9+/=]*):\s*")


@dataclass(frozen=True, slots=True)
class ExpectedDigest:
    """What the body must hash to: the strongest algorithm the header names that is checked."""

    algorithm: str
    digest: bytes

    def said(self) -> str:
        return f"{self.algorithm}=:{base64.b64encode(self.digest).decode()}:"


def parse_content_digest(header: str | None) -> ExpectedDigest | None:
    """The digest ``header`` (a ``Content-Digest`` value) asks the body to have; None without one.

    Raises:
        InvalidParameterError: the header is not a list of ``algorithm=:base64:`` members,
            a digest has the wrong length for its algorithm, or no algorithm is one checked.
    """
    if header is None:
        return None
    named: dict[str, bytes] = {}
    for member in header.split(","):
        found = _MEMBER.fullmatch(member)
        if found is None:
            raise InvalidParameterError(
                f"Content-Digest {header[:120]!r} is not a list of algorithm=:base64: members;"
                " send for example sha-256=:<base64 of the body's SHA-256>:"
            )
        try:
            named[found.group(1)] = base64.b64decode(found.group(2), validate=True)
        except binascii.Error:
            raise InvalidParameterError(
                f"Content-Digest member {member.strip()[:80]!r} does not hold base64"
            ) from None
    for algorithm, length in ALGORITHMS.items():
        digest = named.get(algorithm)
        if digest is None:
            continue
        if len(digest) != length:
            raise InvalidParameterError(
                f"Content-Digest {algorithm} holds {len(digest)} bytes where a {algorithm} digest"
                f" has {length}"
            )
        return ExpectedDigest(algorithm, digest)
    raise InvalidParameterError(
        f"Content-Digest names {', '.join(sorted(named))}, none of which blobrep checks: send"
        f" {' or '.join(sorted(ALGORITHMS))}"
    )


async def checked(
    pieces: AsyncIterable[bytes], expected: ExpectedDigest, what: str, complete: Callable[[int], bool]
) -> AsyncIterator[bytes]:
    """``pieces`` as they come, hashed (in worker threads, a batch at a time); once they end,
    :class:`SourceError` unless they hash to ``expected``. The error comes before the end is
    passed on, so the publish reading them never commits the disk.

    ``complete(received)`` says whether the body is whole at its end: a short body is left to
    the length check, which says so in its own words.
    """
    hasher = hashlib.new(expected.algorithm.replace("-", ""))
    batch: list[bytes] = []
    gathered = received = 0
    async for piece in pieces:
        batch.append(piece)
        gathered += len(piece)
        received += len(piece)
        if gathered >= _BATCH:
            await anyio.to_thread.run_sync(_update, hasher, batch)
            batch, gathered = [], 0
        yield piece
    await anyio.to_thread.run_sync(_update, hasher, batch)
    if complete(received) and not hmac.compare_digest(hasher.digest(), expected.digest):
        actual = ExpectedDigest(expected.algorithm, hasher.digest())
        raise SourceError(
            f"{what} does not match its Content-Digest: the {received} bytes received hash to"
            f" {actual.said()}, the client sent {expected.said()}; nothing of it was kept, send it again"
        )


def _update(hasher: hashlib._Hash, batch: list[bytes]) -> None:
    for piece in batch:
        hasher.update(piece)
