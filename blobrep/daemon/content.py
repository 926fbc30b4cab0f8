"""Reading a version's disk: ``GET`` and ``HEAD .../versions/{v}/content[?location=R]`` for its
OS disk, ``.../versions/{v}/dataDisks/{lun}/content`` for its data disk at LUN ``lun``.

Every disk is read alike (each is a blob of its own, with its own digest and reader); what
follows holds for each.

``{v}`` is a version or ``latest`` (resolved in the region); ``location`` defaults to the
gallery's home region. Every request is checked by the service on its own (the deploy right,
Reader or above, and the version Completed in the region), with the messages the CLI prints,
before any byte moves.

The answer carries ``Content-Length``, ``ETag`` (the quoted whole-blob digest), ``Accept-Ranges:
bytes`` and ``Content-Type: application/octet-stream``. ``If-None-Match`` naming the tag (or
``*``) gets ``304``; one ``Range`` gets ``206`` with ``Content-Range``, a range past the end
``416`` with ``Content-Range: bytes */size``; several ranges or a malformed header get the
whole disk; ``If-Range`` with another tag gets the whole disk too (:mod:`blobrep.core.ranges`
decides). ``HEAD`` answers what ``GET`` would, without the body, and opens no reader.

The body streams through the version's shared reader (:mod:`blobrep.daemon.readers`: one
per version and region, least-loaded over the replicas, every chunk verified, failover and
repair), in order, reading a few chunks ahead (the download's share of the reader's reads in
flight, and at most :data:`AHEAD_BYTES`; every chunk held takes its bytes from the pool's
budget of all downloads until it is sent) and sending pieces of at most :data:`PIECE` bytes.
Each piece waits for uvicorn to take it, and uvicorn waits for the client's socket, so a
client that stops reading holds at most its read-ahead, the chunk it is sending and one piece;
nothing is buffered whole. A client that goes away cancels its download at once (the reads
in flight included) and gives back its share of the reader. A chunk that no replica can serve
after the headers went out ends the response short (the client sees fewer bytes than
``Content-Length``), as HTTP allows no other way to say so.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import anyio
from starlette.responses import Response

from blobrep.core.disks import VersionDisk, version_disks
from blobrep.core.ids import ResourceId
from blobrep.core.ranges import (
    ByteRange,
    Unsatisfiable,
    entity_tag,
    if_range_holds,
    none_match,
    requested,
    slices,
)
from blobrep.daemon import arm, uploads
from blobrep.daemon.http import Ask, Reading, failure, json, resource
from blobrep.daemon.readers import Lease, ReaderPool, open_pool
from blobrep.errors import BlobrepError, ResourceNotFoundError, UnavailableError
from blobrep.service import queries

if TYPE_CHECKING:
    from anyio.abc import TaskGroup
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.routing import Route
    from starlette.types import Receive, Scope, Send

    from blobrep.core.gallery import GalleryImageVersion
    from blobrep.core.manifest import ChunkRef
    from blobrep.service import Store

#: Most bytes handed to the server at once: what a client that stops reading can hold there.
PIECE: Final = 1024 * 1024

#: Most plain bytes of chunks one download reads ahead of the chunk it sends (at least one chunk).
AHEAD_BYTES: Final = 4 * 1024 * 1024

_ZEROS: Final = bytes(PIECE)

VERSION: Final = "/galleries/{gallery}/images/{image}/versions/{version}"
#: The OS disk of a version.
OS_DISK: Final = f"{VERSION}/content"
#: The data disk at LUN ``{lun}`` of a version.
DATA_DISK: Final = f"{VERSION}/dataDisks/{{lun}}/content"

Emit = Callable[[bytes | memoryview], Awaitable[None]]


def routes() -> list[Route]:
    """The reads of every disk; each path's upload (``PUT``) is :mod:`blobrep.daemon.uploads`'."""
    return [
        resource(path, get=Reading(_content), head=Reading(_content), put=uploads.upload)
        for path in (OS_DISK, DATA_DISK)
    ]


@asynccontextmanager
async def running(app: Starlette) -> AsyncIterator[None]:
    """The shared readers (``app.state.readers``, a :class:`~blobrep.daemon.readers.ReaderPool`),
    open while the daemon serves; any still open are closed when it stops."""
    async with open_pool() as pool:
        app.state.readers = pool
        yield


async def _content(request: Request, ask: Ask) -> Response:
    params = request.path_params
    image_id = f"/galleries/{params['gallery']}/images/{params['image']}/versions/{params['version']}"
    location = request.query_params.get("location")
    lun = uploads.lun_of(request)
    version, config = await ask(
        lambda reads, home, caller: queries.readable_version(reads, home, caller, image_id, location)
    )
    region, stores = config.name, ask.service.completed_stores(version, config)
    blob = _disk_of(version, lun).info
    if blob is None:  # Completed regions have every disk; a catalog saying otherwise is damaged
        raise UnavailableError(f"{image_id} has no published disk to read in {region}")
    size, etag = blob.size, entity_tag(blob.digest)
    headers = {"ETag": etag, "Accept-Ranges": "bytes"}
    if none_match(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    wanted = (
        requested(request.headers.get("range"), size)
        if if_range_holds(request.headers.get("if-range"), etag)
        else None
    )
    if isinstance(wanted, Unsatisfiable):
        headers["Content-Range"] = wanted.content_range
        return _unsatisfiable(request, version, lun, size, headers)
    headers["Content-Type"] = "application/octet-stream"
    if wanted is None:
        status, length = 200, size
    else:
        status, length = 206, wanted.length
        headers["Content-Range"] = wanted.content_range(size)
    headers["Content-Length"] = str(length)
    if request.method == "HEAD" or length == 0:
        return Response(status_code=status, headers=headers)
    pool: ReaderPool = request.app.state.readers
    source = _Source(version, region, stores, lun)
    return _Download(
        pool, source, wanted or ByteRange(0, size - 1), status, headers, request.app.state.metrics.served
    )


def _unsatisfiable(
    request: Request, version: GalleryImageVersion, lun: int | None, size: int, headers: dict[str, str]
) -> Response:
    """416: the ``Range`` asks for no byte of the disk (the OS disk, or the data disk at ``lun``)."""
    version_id = f"/galleries/{version.gallery}/images/{version.image}/versions/{version.version}"
    disk = version_id if lun is None else f"the data disk at LUN {lun} of {version_id}"
    right = f"ask for bytes 0 to {size - 1}" if size else "the disk is empty: ask without a Range"
    asked = request.headers.get("range")
    message = f"Range {asked!r} asks for no byte of the {size} bytes of {disk}: {right}"
    return json(arm.error_body("RangeNotSatisfiable", message), 416, headers)


@dataclass(frozen=True, slots=True)
class _Source:
    """What the shared reader is opened from, the caller having been checked."""

    version: GalleryImageVersion
    region: str
    stores: list[Store]
    lun: int | None
    """None for the OS disk; else the data disk's LUN."""


def _disk_of(version: GalleryImageVersion, lun: int | None) -> VersionDisk:
    """The disk of ``version`` at ``lun`` (None: the OS disk).

    Raises:
        ResourceNotFoundError: the version has no data disk at ``lun``.
    """
    for disk in version_disks(version):
        if disk.lun == lun:
            return disk
    version_id = ResourceId.of_version(version.gallery, version.image, version.version)
    luns = ", ".join(str(disk.lun) for disk in version.data_disks) or "none"
    raise ResourceNotFoundError(
        f"{version_id} has no data disk at LUN {lun} (its data disks: LUN {luns}): read one of"
        " those, or its OS disk at .../content"
    )


class _Download(Response):
    """A body streamed from the version's shared reader; see the module docstring.

    The reader is leased when the server starts sending this response and given back when it
    ends, however it ends, in the one task that sends it, so no lease can outlive its download.
    """

    def __init__(
        self,
        pool: ReaderPool,
        source: _Source,
        wanted: ByteRange,
        status: int,
        headers: dict[str, str],
        served: Callable[[int], None],
    ) -> None:
        self.status_code = status
        self.background = None
        self.init_headers(headers)
        self._pool = pool
        self._source = source
        self._wanted = wanted
        self._served = served

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        source = self._source
        failed: BlobrepError | None = None
        try:
            async with self._pool.reading(source.version, source.region, source.stores, source.lun) as lease:
                await send(
                    {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
                )
                async with anyio.create_task_group() as group:
                    group.start_soon(_cancel_on_disconnect, receive, group.cancel_scope)
                    try:
                        await self._body(lease, send)
                    except BlobrepError as exc:
                        failed = exc
                    group.cancel_scope.cancel()
        except BlobrepError as exc:  # the reader did not open: nothing has been sent yet
            await failure(exc)(scope, receive, send)
            return
        if failed is not None:
            raise failed  # after the headers: the connection closes short of Content-Length

    async def _body(self, lease: Lease, send: Send) -> None:
        async def emit(piece: bytes | memoryview) -> None:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            self._served(len(piece))

        await send_range(lease, self._wanted, emit)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    """Cancel ``scope`` once the client has gone (uvicorn's sends then return without a word)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


@dataclass(eq=False, slots=True)
class _Slot:
    """One chunk of a range on its way: read ahead, then sent in order."""

    chunk: ChunkRef
    skip: int
    take: int
    held: int = 0
    """Bytes of the pool's budget this chunk holds until it is sent."""
    data: bytes | memoryview | None = None
    error: BlobrepError | None = None
    done: anyio.Event = field(default_factory=anyio.Event)


class _ReadAhead:
    """The chunks of one range, read in order ahead of the one being sent.

    The window holds the chunk being sent and the reads started after it: at most
    :meth:`Lease.ahead` chunks and :data:`AHEAD_BYTES` plain bytes (at least one chunk). A
    download's memory is that window and the piece the server holds; when many downloads share
    the reader each keeps one chunk, and the reader's own limit bounds the reads in flight.
    """

    def __init__(self, lease: Lease, wanted: ByteRange, group: TaskGroup) -> None:
        chunks = lease.reader.manifest.chunks
        self._pending = (
            _Slot(chunks[index], skip, take)
            for index, skip, take in slices(lease.offsets, lease.lengths, wanted)
        )
        self._window: deque[_Slot] = deque()
        self._held = 0
        self._lease = lease
        self._group = group
        self._top_up()

    def _top_up(self) -> None:
        while len(self._window) < self._lease.ahead() and (self._held < AHEAD_BYTES or not self._window):
            slot = next(self._pending, None)
            if slot is None:
                return
            if slot.chunk.is_zero:
                slot.done.set()
            else:
                self._held += slot.chunk.length
                self._group.start_soon(self._fill, slot)
            self._window.append(slot)

    async def _fill(self, slot: _Slot) -> None:
        try:
            slot.held = await self._lease.budget.acquire(slot.chunk.length)
            slot.data = await self._lease.read_chunk(slot.chunk)
        except BlobrepError as exc:
            slot.error = exc
        finally:
            slot.done.set()

    async def next(self) -> _Slot | None:
        """The next chunk in order once its read is over (``data`` or ``error`` set); None after
        the last."""
        if not self._window:
            return None
        slot = self._window[0]
        await slot.done.wait()
        return slot

    def sent(self, slot: _Slot) -> None:
        """``slot``, the chunk :meth:`next` gave, is sent: its bytes go and the next reads start."""
        self._window.popleft()
        self._give_back(slot)
        if not slot.chunk.is_zero:
            self._held -= slot.chunk.length
        if slot.data is not None and slot.skip + slot.take < slot.chunk.length:
            self._lease.keep_edge(slot.chunk, slot.data)  # the next range starts inside it
        slot.data = None
        self._top_up()

    def _give_back(self, slot: _Slot) -> None:
        if slot.held:
            self._lease.budget.release(slot.held)
            slot.held = 0

    def close(self) -> None:
        """Give back the budget of the chunks still in the window (the range ended early); call
        once no read is running."""
        for slot in self._window:
            self._give_back(slot)


async def send_range(lease: Lease, wanted: ByteRange, emit: Emit) -> None:
    """Pass the bytes of ``wanted`` to ``emit`` in order, in pieces of at most :data:`PIECE`.

    Chunks are read through the shared reader (verified, with failover), a few ahead of the
    one being sent (:class:`_ReadAhead`). A read error is raised when that chunk's turn comes,
    after every byte before it was sent.

    Raises:
        ChunkMissingError, ChunkCorruptError, StorageError: a chunk no replica could serve.
    """
    failed: BlobrepError | None = None
    chunks: _ReadAhead | None = None
    try:
        async with anyio.create_task_group() as group:
            chunks = _ReadAhead(lease, wanted, group)
            while (slot := await chunks.next()) is not None:
                if slot.error is not None:
                    failed = slot.error
                    group.cancel_scope.cancel()
                    break
                await _send_chunk(slot, emit)
                chunks.sent(slot)
    finally:
        if chunks is not None:
            chunks.close()  # the task group is over: no read holds or takes budget any more
    if failed is not None:
        raise failed


async def _send_chunk(slot: _Slot, emit: Emit) -> None:
    """Emit the bytes ``slot`` wants of its chunk. A function of its own so that no view of the
    chunk outlives its sending: a download waiting for its next chunk's turn must not keep the
    last one alive (two hundred waiting downloads would hold two hundred chunks)."""
    for piece in _pieces(slot.data, slot.skip, slot.take):
        await emit(piece)


def _pieces(data: bytes | memoryview | None, skip: int, take: int) -> Iterator[bytes | memoryview]:
    """``take`` bytes of ``data`` from ``skip`` (zeros if ``data`` is None), in pieces of at most
    :data:`PIECE` bytes: views of ``data``, never copies (the transport copies into the socket
    once, and every other copy of every byte served costs the event loop's thread)."""
    view = None if data is None else memoryview(data)
    for start in range(skip, skip + take, PIECE):
        length = min(PIECE, skip + take - start)
        if view is None:
            yield _ZEROS if length == PIECE else memoryview(_ZEROS)[:length]
        else:
            yield view[start : start + length]
