"""The load generator's HTTP client: one keep-alive HTTP/1.1 connection on an anyio TCP stream.

The daemon benchmark's clients share two cores with the daemon they load, so whatever CPU a
client spends per request or per byte is taken from the daemon and shows up as the daemon's
slowness. Measured on the benchmark's 2-core machine against the daemon's ``/livez`` (which
costs the daemon about 0.3 ms of CPU per request), with 50 connections: ``httpx.AsyncClient``
spent 3.4 to 4 ms of client CPU per request (its pool examines every connection on each
request), one ``httpx.AsyncClient`` per connection 1.4 ms, one ``httpcore`` pool per
connection 0.5 ms, ``httpx2`` 0.76 ms, and this client 0.1 ms. With any of the libraries
the load generator, not the daemon, would have been the bottleneck of every step. So the load
speaks the little HTTP it needs by itself: ``GET`` and ``HEAD`` with a few headers, answers
with a ``Content-Length`` (every answer of the daemon's routes has one), keep-alive; anything
else is refused loudly rather than misread. The benchmark's setup and its upload use httpx.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import anyio
from anyio.abc import SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

MAX_HEAD: Final = 64 * 1024
"""Most bytes of a status line and headers."""
READ_SIZE: Final = 1024 * 1024
"""Most bytes taken from the connection at once while reading a body."""


class ProtocolError(RuntimeError):
    """An answer this client does not read: no ``Content-Length``, or not HTTP/1.1."""


@dataclass(frozen=True, slots=True)
class Head:
    """An answer's status and headers (names in lower case)."""

    status: int
    headers: dict[str, str]

    @property
    def length(self) -> int:
        value = self.headers.get("content-length")
        if value is None:
            raise ProtocolError(f"an answer {self.status} without Content-Length: {self.headers}")
        return int(value)


def request_bytes(method: str, path: str, host: str, headers: dict[str, str]) -> bytes:
    """The bytes of a request without a body."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Connection:
    """One keep-alive connection; one request at a time. Use :meth:`open`."""

    def __init__(self, stream: SocketStream) -> None:
        self._stream = stream
        self._reader = BufferedByteReceiveStream(stream)

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        return cls(await anyio.connect_tcp(host, port))

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def send(self, request: bytes) -> Head:
        """Send ``request`` (from :func:`request_bytes`) and read the answer's head."""
        await self._stream.send(request)
        head = await self._reader.receive_until(b"\r\n\r\n", MAX_HEAD)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        version, _, rest = status_line.partition(" ")
        if version != "HTTP/1.1":
            raise ProtocolError(f"not an HTTP/1.1 answer: {status_line!r}")
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return Head(int(rest.split(" ", 1)[0]), headers)

    async def body(self, head: Head, sink: Callable[[bytes], None] | None = None) -> int:
        """Read the answer's body, passing each piece to ``sink`` (if any); its length."""
        remaining = head.length
        while remaining:
            piece = await self._reader.receive(min(remaining, READ_SIZE))
            remaining -= len(piece)
            if sink is not None:
                sink(piece)
        return head.length

    async def discard(self, head: Head) -> bytes:
        """The whole (small) body of the answer."""
        return await self._reader.receive_exactly(head.length)
