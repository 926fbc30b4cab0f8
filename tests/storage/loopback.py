"""Loopback TCP servers for faults a real object store will not produce on demand.

A store pointed at one of these meets a server that never answers (:func:`silent`), one that
fails every request (:func:`failing`), or a relay to the real server that hangs up on the
first connections and counts what comes back (:func:`relaying`).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import anyio.abc


@dataclass
class Traffic:
    connections: int = 0
    closed: int = 0
    to_client: int = 0
    all_closed: anyio.Event = field(default_factory=anyio.Event)


Handler = Callable[[int, anyio.abc.SocketStream, Traffic], Awaitable[None]]


@asynccontextmanager
async def loopback(handler: Handler) -> AsyncIterator[tuple[int, Traffic]]:
    """A TCP server on a free loopback port that hands connection n to ``handler``."""
    traffic = Traffic()
    numbers = itertools.count()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port: int = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def serve(stream: anyio.abc.SocketStream) -> None:
        traffic.connections += 1
        async with stream:
            await handler(next(numbers), stream, traffic)
        traffic.closed += 1
        if traffic.closed == traffic.connections:
            traffic.all_closed.set()

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        yield port, traffic
        tg.cancel_scope.cancel()


async def silent(_: int, stream: anyio.abc.SocketStream, traffic: Traffic) -> None:
    """Read the request and never answer, until the client hangs up."""
    try:
        while await stream.receive():
            pass
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        return


async def failing(_: int, stream: anyio.abc.SocketStream, traffic: Traffic) -> None:
    """Answer every request with 503 and close."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += await stream.receive()
    await stream.send(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def relaying(host: str, port: int, *, drop_first: int = 0) -> Handler:
    """Hang up on the first ``drop_first`` connections, relay the rest to ``host:port``."""

    async def relay(number: int, stream: anyio.abc.SocketStream, traffic: Traffic) -> None:
        if number < drop_first:
            return
        async with await anyio.connect_tcp(host, port) as upstream:

            async def pump(source: anyio.abc.SocketStream, sink: anyio.abc.SocketStream, back: bool) -> None:
                try:
                    async for data in source:
                        if back:
                            traffic.to_client += len(data)
                        await sink.send(data)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    pass
                tg.cancel_scope.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(pump, stream, upstream, False)
                tg.start_soon(pump, upstream, stream, True)

    return relay
