"""The object-store test servers, found through the environment (shared by every test package).

``python3 tools/dev.py services start`` starts the servers (SeaweedFS's S3 gateway and
Azurite on loopback) and prints the variables to export: the client's own (``AWS_*``,
``AZURE_*``, read by obstore) and the test buckets (``BLOBREP_TEST_S3_URL``,
``BLOBREP_TEST_AZURE_URL``); ``tools/dev.py test`` starts them around pytest. A missing
variable fails the test that needs it: an object-store test that silently skips is a feature
nobody checks.
"""

from __future__ import annotations

import contextlib
import os
import re
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio
import anyio.abc
import obstore
import pytest
from obstore.store import AzureStore, S3Store

from blobrep.storage.object_url import ObjectKind, ObjectUrl

if TYPE_CHECKING:
    from obstore import ObjectMeta

SERVICES_HINT = "run `python3 tools/dev.py services start` and export the variables it prints"

VARIABLES: dict[ObjectKind, tuple[str, ...]] = {
    "s3": (
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "AWS_ALLOW_HTTP",
        "BLOBREP_TEST_S3_URL",
    ),
    "azure": (
        "AZURE_STORAGE_ACCOUNT_NAME",
        "AZURE_STORAGE_ACCOUNT_KEY",
        "AZURE_STORAGE_ENDPOINT",
        "AZURE_ALLOW_HTTP",
        "BLOBREP_TEST_AZURE_URL",
    ),
}
TEST_URL_VARIABLE: dict[ObjectKind, str] = {"s3": "BLOBREP_TEST_S3_URL", "azure": "BLOBREP_TEST_AZURE_URL"}


def service_environment(kind: ObjectKind) -> dict[str, str]:
    """The variables the ``kind`` test server needs; fails the test if any is missing."""
    missing = [name for name in VARIABLES[kind] if not os.environ.get(name)]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not set: the {kind} object-store tests need the test servers;"
            f" {SERVICES_HINT}",
            pytrace=False,
        )
    return {name: os.environ[name] for name in VARIABLES[kind]}


def raw_backend(url: ObjectUrl) -> S3Store | AzureStore:
    """obstore's own client for ``url``'s bucket, configured from the environment."""
    return S3Store(url.bucket) if url.kind == "s3" else AzureStore(url.bucket)


async def listed(url: ObjectUrl, below: str = "") -> list[ObjectMeta]:
    """Every object under ``url``'s prefix (and ``below`` it), read from the server directly."""
    prefix = "/".join(part for part in (url.prefix, below.strip("/")) if part)
    return [meta async for page in obstore.list(raw_backend(url), prefix) for meta in page]


async def remove_prefix(url: ObjectUrl) -> None:
    """Delete every object under ``url``'s prefix."""
    backend = raw_backend(url)
    paths = [meta["path"] for meta in await listed(url)]
    for start in range(0, len(paths), 200):
        await obstore.delete_async(backend, paths[start : start + 200])


def bucket_of(kind: ObjectKind) -> ObjectUrl:
    """The test bucket or container of the ``kind`` server; fails the test if it is not up."""
    return ObjectUrl.parse(service_environment(kind)[TEST_URL_VARIABLE[kind]])


def fresh_prefix(kind: ObjectKind) -> ObjectUrl:
    """A prefix of the ``kind`` test bucket no other test uses (remove it with :func:`remove_prefix`)."""
    return bucket_of(kind).child(f"t-{uuid.uuid4().hex[:16]}")


class Outage:
    """A loopback relay in front of a real test server that can go down and come back.

    A store pointed at :attr:`endpoint` reaches the real server through it. :meth:`down`
    closes the listener and cuts every open connection, so the store meets exactly what a
    stopped server gives, connection refused; :meth:`up` listens on the same port again. The
    relay reads the request lines that pass (``PUT /bucket/key HTTP/1.1``) into :attr:`puts`,
    so a test can tell which objects were written while it was up, and counts the bytes sent
    to the server in :attr:`sent`. With :attr:`cut_after` set to n, it goes down by itself as
    the server answers the n-th write of chunk data (a pack, or a chunk stored alone), that
    answer lost: a server stopped in the middle of a copy, after some of it landed.
    """

    _REQUEST = re.compile(rb"(PUT|GET|HEAD|DELETE|POST) (/[^ \r\n]*) HTTP/1\.1\r\n")
    _ANSWER = re.compile(rb"HTTP/1\.1 \d{3} [^\r\n]*\r\n")

    def __init__(self, target: str, group: anyio.abc.TaskGroup) -> None:
        parsed = urllib.parse.urlsplit(target)
        self._target = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self._tail = parsed.path.rstrip("/")  # Azure's endpoint names the account in its path
        self._group = group
        self._scope: anyio.CancelScope | None = None
        self.port = 0
        self.puts: list[str] = []
        self.sent = 0
        self.cut_after: int | None = None
        self._answered_chunks = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}{self._tail}"

    async def up(self) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=self.port)
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        scope = anyio.CancelScope()
        self._scope = scope

        async def serve() -> None:
            with scope:
                async with listener:
                    await listener.serve(self._relay)

        self._group.start_soon(serve)

    def cut(self) -> None:
        """Go down now: the listener and every relayed connection close at the next checkpoint."""
        if self._scope is not None:
            self._scope.cancel()
            self._scope = None

    async def down(self) -> None:
        self.cut()
        await anyio.sleep(0.05)

    def _answered(self, path: str) -> bool:
        """Note that the server answered the write of ``path``; go down (then True) if it was
        the :attr:`cut_after`-th write of chunk data answered."""
        if ("/chunks/" not in path and "/packs/" not in path) or self.cut_after is None:
            return False
        self._answered_chunks += 1
        if self._answered_chunks < self.cut_after:
            return False
        self.cut_after = None
        self.cut()
        return True

    async def _relay(self, client: anyio.abc.SocketStream) -> None:
        writes: list[str] = []  # this connection's PUTs not answered yet, in order (no pipelining)
        async with client, await anyio.connect_tcp(*self._target) as server:

            async def requests() -> None:
                seen = b""
                async for data in client:
                    self.sent += len(data)
                    seen += data  # what follows the last line end may start a request line
                    for method, path in self._REQUEST.findall(seen):
                        writes.append(urllib.parse.unquote(path.decode()) if method == b"PUT" else "")
                        if method == b"PUT":
                            self.puts.append(writes[-1])
                    seen = seen[seen.rfind(b"\r\n") + 2 :][-4096:]
                    await server.send(data)

            async def answers() -> None:
                seen = b""
                async for data in server:
                    seen += data
                    for _ in self._ANSWER.findall(seen):
                        if writes and self._answered(writes.pop(0)):
                            return  # down: the write landed, its answer is lost
                    seen = seen[seen.rfind(b"\r\n") + 2 :][-4096:]
                    await client.send(data)

            async def pump(direction: Callable[[], Awaitable[None]]) -> None:
                with contextlib.suppress(
                    anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream
                ):
                    await direction()
                group.cancel_scope.cancel()

            async with anyio.create_task_group() as group:
                group.start_soon(pump, requests)
                group.start_soon(pump, answers)
