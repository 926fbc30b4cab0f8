"""A version's disk over HTTP: streamed up from a file or a pipe, streamed down into a sparse file.

Neither direction ever holds a disk whole. An upload reads the source a piece at a time on a
worker thread and hands each piece to the connection, which pulls the next only once the
socket took this one: the daemon's pace (its publish pipeline, with backpressure) sets the
pace of the reads. A source of known length is sent with its ``Content-Length``; a pipe,
whose length nobody knows, in chunked transfer encoding, its end marking the end.

A download writes each piece where it belongs in the output as it arrives, on a worker
thread, through the same atomic output file as a local ``vm create``
(:class:`~blobrep.storage.outputs.OutputFile`: a sparse temporary renamed over the output
only once every byte checked out), leaves all-zero blocks as holes, and hashes the bytes in
order to compare them with the digest the daemon names in ``ETag``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Final

import anyio.to_thread

from blobrep.client.errors import EndpointError
from blobrep.core.codec import is_zero, new_blob_hasher
from blobrep.errors import BlobDigestMismatchError, SourceError

if TYPE_CHECKING:
    import httpx2

    from blobrep.engine.deploy import DeploymentResult
    from blobrep.engine.publish import ProgressCallback, PublishProgressCallback
    from blobrep.engine.source import BlobSource
    from blobrep.storage.outputs import OutputFile

#: Bytes read from a source, or gathered from a download, per hop to a worker thread.
PIECE: Final = 1024 * 1024
#: The granularity of holes in a downloaded disk: a block of this many zero bytes (aligned
#: in the disk) is not written. The file system's own blocks are at most this large.
HOLE: Final = 64 * 1024


async def upload_pieces(source: BlobSource, progress: PublishProgressCallback | None) -> AsyncIterator[bytes]:
    """The bytes of ``source``, a piece at a time: exactly the size it announced, or, for a
    stream of unknown length (a pipe), all it holds.

    Raises:
        SourceError: the source ended short of its size (a file that shrank while it was
            sent: the daemon then sees a body short of its ``Content-Length`` and commits
            nothing), or could not be read.
        StorageError: the file could not be read.
    """
    size, sent = source.size, 0
    while size is None or sent < size:
        wanted = PIECE if size is None else min(PIECE, size - sent)
        buffer = bytearray(wanted)
        got = await anyio.to_thread.run_sync(_fill, source, memoryview(buffer))
        if got == 0 and size is None:
            return
        if got == 0:
            raise SourceError(
                f"{source.name} ended after {sent} bytes while it was uploaded, short of the {size}"
                " bytes it had when the upload began; nothing of it was published"
            )
        sent += got
        if progress is not None:
            progress(sent, size)
        yield bytes(buffer[:got]) if got < wanted else bytes(buffer)
        if size is None and got < wanted:  # the stream ended
            return


def _fill(source: BlobSource, view: memoryview) -> int:
    """Read into ``view`` until it is full or the source ends; the bytes read."""
    done = 0
    while done < len(view):
        got = source.readinto(view[done:])
        if got == 0:
            break
        done += got
    return done


def entity_digest(response: httpx2.Response) -> str:
    """The whole-blob digest the ``ETag`` of a content response names.

    Raises:
        EndpointError: there is no strong tag.
    """
    tag = response.headers.get("etag", "")
    if len(tag) < 3 or not (tag.startswith('"') and tag.endswith('"')):
        raise EndpointError(
            f"GET {response.request.url} answered without the disk's digest in ETag (got {tag[:80]!r})"
        )
    return tag[1:-1]


def content_length(response: httpx2.Response) -> int:
    text = response.headers.get("content-length", "")
    if not (text.isascii() and text.isdigit()):
        raise EndpointError(f"GET {response.request.url} answered without a Content-Length")
    return int(text)


async def download(
    response: httpx2.Response,
    output: Path | None,
    *,
    what: str,
    stored_bytes: int,
    progress: ProgressCallback | None = None,
) -> DeploymentResult:
    """Read the disk ``response`` carries into the sparse file ``output`` (or discard it),
    checked against the digest in its ``ETag``.

    ``stored_bytes`` is what the replicas served for it (the version's stored size), reported
    as the local command reports it; ``what`` names the disk in a mismatch.

    Raises:
        InvalidInputError: ``output`` is a directory, FIFO, device or socket, or its directory
            does not exist.
        StorageError, StorageFullError: the output cannot be written.
        BlobDigestMismatchError: the bytes do not hash to the digest the daemon named.
        EndpointError: the daemon broke off before the last byte.
    """
    from blobrep.engine.deploy import DeploymentResult
    from blobrep.storage.outputs import OutputFile

    started = time.perf_counter()
    size, expected = content_length(response), entity_digest(response)
    target = None if output is None else Path(output).absolute()
    out = None if target is None else await anyio.to_thread.run_sync(OutputFile.create, target, size)
    try:
        digest = await _receive(response, out, size, progress)
        if digest != expected:
            raise BlobDigestMismatchError(f"{what} hashes to {digest}, the daemon says {expected}")
        if out is not None:
            await anyio.to_thread.run_sync(out.finish)
    except BaseException:
        if out is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(out.abandon)
        raise
    return DeploymentResult(
        output=None if target is None else str(target),
        seconds=time.perf_counter() - started,
        size=size,
        digest=digest,
        ok=True,
        bytes_read=stored_bytes,
    )


async def _receive(
    response: httpx2.Response, out: OutputFile | None, size: int, progress: ProgressCallback | None
) -> str:
    """Hash (and write, if ``out``) the body, a gathered piece per thread hop; the digest."""
    hasher = new_blob_hasher()
    pending = bytearray()
    position = 0

    def settle(data: bytes, at: int) -> None:
        hasher.update(data)
        if out is not None:
            write_sparse(out, memoryview(data), at)

    async for piece in response.aiter_bytes():
        pending += piece
        while len(pending) >= PIECE:
            data, pending = bytes(pending[:PIECE]), pending[PIECE:]
            await anyio.to_thread.run_sync(settle, data, position)
            position += len(data)
            if progress is not None:
                progress(position, size)
    if pending:
        await anyio.to_thread.run_sync(settle, bytes(pending), position)
        position += len(pending)
    if position != size:
        raise EndpointError(
            f"GET {response.request.url} ended after {position} of its {size} bytes; nothing was written"
        )
    if progress is not None:
        progress(position, size)
    digest: str = hasher.hexdigest()
    return digest


def write_sparse(out: OutputFile, data: memoryview, at: int) -> None:
    """Write ``data`` at ``at`` in ``out``, leaving each all-zero :data:`HOLE` block (aligned
    in the file) unwritten: the file was sized sparse, so those stay holes. Blocking."""
    start = 0
    while start < len(data):
        end = min(len(data), (at + start) // HOLE * HOLE + HOLE - at)
        if not is_zero(data[start:end]):
            run_end = end
            while run_end < len(data):
                following = min(len(data), run_end + HOLE)
                if is_zero(data[run_end:following]):
                    break
                run_end = following
            out.write_at(data[start:run_end], at + start)
            end = run_end
        start = end
