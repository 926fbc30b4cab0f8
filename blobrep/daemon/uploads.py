"""Uploading a version's disks: ``PUT .../versions/{v}/content`` (its OS disk) and
``PUT .../versions/{v}/dataDisks/{lun}/content`` (its data disk at LUN ``lun``).

Each is the raw disk as the body (checked against its ``Content-Digest`` when the client sends
one, see :mod:`blobrep.daemon.content_digest`), streamed into the publish pipeline as it arrives (see
:mod:`blobrep.daemon.versions` for the requests that create a version, and
:mod:`blobrep.service.version_uploads` for what the service records). A version described
with data disks is ``Completed`` in its source region once every disk has arrived, each by its
own request (one at a time); the answer to each is the version as it then stands.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Final

import anyio

from blobrep.core.ids import ResourceId
from blobrep.core.names import MAX_LUN, validate_lun
from blobrep.core.version import ImageVersion
from blobrep.daemon import arm
from blobrep.daemon.bodies import UnsupportedCodingError
from blobrep.daemon.content_digest import checked, parse_content_digest
from blobrep.daemon.http import json
from blobrep.daemon.operations import wake_reconciler
from blobrep.errors import InvalidNameError, InvalidParameterError, SourceError
from blobrep.service.views import version_view

#: Seconds an upload may go without a byte arriving before it fails (``--upload-idle-timeout``).
DEFAULT_UPLOAD_IDLE_TIMEOUT: Final = 60.0

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from blobrep.engine.publish import PublishResult
    from blobrep.service import GalleryService


def lun_of(request: Request) -> int | None:
    """The LUN a data disk's route names; None on the OS disk's route.

    Raises:
        InvalidNameError: the path's LUN is not a whole number from 0 to 63.
    """
    text = request.path_params.get("lun")
    if text is None:
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= 2):
        raise InvalidNameError(f"invalid data disk LUN {text[:20]!r}: use a whole number from 0 to {MAX_LUN}")
    return validate_lun(int(text))


async def upload(request: Request, service: GalleryService, caller: str) -> Response:
    """The disk the route names (the OS disk, or the data disk at its LUN) of a version
    waiting for it, streamed into the publish pipeline.

    The answer is the version, with what the publish did in ``x-blobrep-new-chunks`` (chunks
    no replica had) and ``x-blobrep-written-bytes`` (chunk bytes written over every replica).
    """
    from blobrep.engine.source import AsyncStreamSource

    gallery, image, name = (request.path_params[key] for key in ("gallery", "image", "version"))
    version_id = ResourceId.of_version(gallery, image, ImageVersion.parse(name))
    lun = lun_of(request)
    _check_codings(request)
    expected = parse_content_digest(request.headers.get("content-digest"))
    what = f"the upload of {version_id}" if lun is None else f"the upload of LUN {lun} of {version_id}"
    idle = request.app.state.upload_idle_timeout
    length = _content_length(request)
    body = _counted(request, idle, what)
    if expected is not None:
        body = checked(body, expected, what, lambda received: length is None or received == length)
    source = AsyncStreamSource(body, size=length, name=what)
    results: list[PublishResult] = []
    published = await service.upload_version(
        caller, gallery, image, name, source, on_published=results.append, lun=lun
    )
    wake_reconciler(request)
    # What the publish did is about this request, not the version: headers, beside the resource.
    headers = {}
    if results:
        headers = {
            "x-blobrep-new-chunks": str(results[0].new_chunks),
            "x-blobrep-written-bytes": str(results[0].written_bytes),
        }
    return json(arm.resource(version_view(published, expand_replication=True)), headers=headers)


def _content_length(request: Request) -> int | None:
    """The body's announced length; None for a chunked body (its own framing marks the end)."""
    text = request.headers.get("content-length")
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()):
        raise InvalidParameterError(f"Content-Length {text!r} is not a whole number of bytes")
    return int(text)


def _check_codings(request: Request) -> None:
    """Refuse a body sent compressed: the bytes received are the disk stored, so a body in a
    content coding (``Content-Encoding: gzip``) or in a transfer coding other than ``chunked``
    would be stored as the compressed bytes, not as the disk.

    Raises:
        UnsupportedCodingError: naming the header and what to send instead.
    """
    content = request.headers.get("content-encoding", "").strip().lower()
    if content not in ("", "identity"):
        raise UnsupportedCodingError(
            f"Content-Encoding {content!r} is not taken for a disk: send the disk's own bytes"
            " without a Content-Encoding (blobrep compresses what it stores itself)"
        )
    codings = [part.strip().lower() for part in request.headers.get("transfer-encoding", "").split(",")]
    if any(coding not in ("", "chunked") for coding in codings):
        raise UnsupportedCodingError(
            f"Transfer-Encoding {', '.join(codings)!r} is not taken for a disk: send it as it is,"
            " with a Content-Length or Transfer-Encoding: chunked"
        )


async def _counted(request: Request, idle: float, what: str) -> AsyncIterator[bytes]:
    """The request body as it arrives, counted in the daemon's metrics.

    Raises:
        SourceError: no byte of it arrived for ``idle`` seconds: a client that stalls
            without hanging up would otherwise hold the version (and its upload) forever.
    """
    metrics = request.app.state.metrics
    pieces = request.stream().__aiter__()
    while True:
        with anyio.move_on_after(idle) as waited:
            try:
                piece = await pieces.__anext__()
            except StopAsyncIteration:
                return
        if waited.cancelled_caught:
            raise SourceError(
                f"{what} stalled: no byte of it arrived for {idle:g} s; send the body without pauses"
                " that long (blobrep serve --upload-idle-timeout sets the limit)"
            )
        metrics.uploaded(len(piece))
        yield piece
