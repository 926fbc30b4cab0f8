"""The ASGI application: the routes of each module, the service opened in the lifespan.

* :mod:`~blobrep.daemon.http`: the caller of a request, JSON answers, ARM errors, paging;
* :mod:`~blobrep.daemon.health`: ``/livez`` and ``/readyz``;
* :mod:`~blobrep.daemon.observe`: ``/metrics``, the request log and its middleware;
* :mod:`~blobrep.daemon.galleries`: galleries and image definitions;
* :mod:`~blobrep.daemon.versions` and :mod:`~blobrep.daemon.operations`: image versions and
  the asynchronous operations their writes answer with;
* :mod:`~blobrep.daemon.content`: a version's disks (the OS disk and each data disk), read
  through the shared readers of :mod:`~blobrep.daemon.readers`, and uploaded
  (:mod:`~blobrep.daemon.uploads`);
* :mod:`~blobrep.daemon.version_copies`: versions created from another version's disk, the
  copies running beside the requests;
* :mod:`~blobrep.daemon.sharing`: principals, group members and role assignments;
* :mod:`~blobrep.daemon.reconcile`: the background loop that drives replication;
* :mod:`~blobrep.daemon.openapi`: the API's OpenAPI 3.1 document, ``/openapi.json``.

The lifespan opens the service, then what runs beside the requests (the shared readers, the
copies, the reconcile loop); on shutdown they stop in the reverse order and the service closes last.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from blobrep.daemon import (
    content,
    galleries,
    health,
    observe,
    openapi,
    operations,
    reconcile,
    sharing,
    uploads,
    version_copies,
    versions,
)
from blobrep.daemon.http import http_error
from blobrep.service import GalleryService

if TYPE_CHECKING:
    from pathlib import Path

    from blobrep.service import StoreWrapper


def create_app(
    home: Path,
    *,
    wrap_store: StoreWrapper | None = None,
    reconcile_interval: float | None = reconcile.DEFAULT_INTERVAL,
    on_failure: Callable[[Exception], None] | None = None,
    service: GalleryService | None = None,
    upload_idle_timeout: float = uploads.DEFAULT_UPLOAD_IDLE_TIMEOUT,
) -> Starlette:
    """The daemon's application over the home ``home``; the service opens in its lifespan.

    ``upload_idle_timeout`` is the most seconds a disk's upload may go without a byte arriving.

    ``reconcile_interval`` is the most seconds between two reconcile passes; None runs no
    reconcile loop (an application for tests that drive replication themselves).
    ``on_failure`` hears of background work that died (a bug in the reconcile loop): the
    service is closed by then, and a server that went on answering would answer nothing
    right, so :func:`~blobrep.daemon.server.serve` stops and fails with it. ``service``, if
    given, is a service the caller opened on ``home`` and closes (the server opens it before
    it listens, so that a home that cannot be opened is one clear error, not a failed startup).
    """

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            async with AsyncExitStack() as stack:
                if service is None:
                    opened = await GalleryService.open(home, wrap_store=wrap_store)
                    await stack.enter_async_context(opened)
                app.state.service = service if service is not None else opened
                await stack.enter_async_context(content.running(app))
                await stack.enter_async_context(version_copies.running(app))
                await stack.enter_async_context(reconcile.running(app, reconcile_interval))
                yield
        except Exception as exc:
            if on_failure is not None:
                on_failure(exc)
            raise

    routes = [
        *health.routes(),
        *observe.routes(),
        *galleries.routes(),
        *versions.routes(),
        *operations.routes(),
        *content.routes(),
        *sharing.routes(),
        *openapi.routes(),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},
        middleware=observe.middleware(),
    )
    app.state.metrics = observe.Metrics()
    app.state.upload_idle_timeout = upload_idle_timeout
    return app
