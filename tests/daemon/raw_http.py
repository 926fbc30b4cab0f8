"""Requests written on a socket by hand, for what an HTTP client library will not send: a body
that stops short of its length or stalls with the connection open, or a transfer coding it
refuses to frame."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit


@contextmanager
def raw_put(url: str, route: str, token: str, sent: bytes, *, head: str) -> Iterator[socket.socket]:
    """A ``PUT route`` to the daemon at ``url`` whose request head ends with the header lines
    ``head`` (``"Content-Length: N"``, say), followed by ``sent``; the connection stays open
    for the block."""
    address = urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as connection:
        lines = (
            f"PUT {route} HTTP/1.1\r\nHost: {address.netloc}\r\n"
            f"Authorization: Bearer {token}\r\n{head}\r\n\r\n"
        )
        connection.sendall(lines.encode() + sent)
        yield connection


def hang_up(connection: socket.socket) -> None:
    """Stop sending, and read whatever the daemon answers until it closes."""
    connection.shutdown(socket.SHUT_WR)
    while connection.recv(65536):
        pass


def response(connection: socket.socket) -> str:
    """One whole HTTP response read from ``connection``: its head and its Content-Length of body."""
    received = b""
    while b"\r\n\r\n" not in received or len(received.partition(b"\r\n\r\n")[2]) < _length(received):
        piece = connection.recv(65536)
        if not piece:
            break
        received += piece
    return received.decode(errors="replace")


def _length(received: bytes) -> int:
    for line in received.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0
