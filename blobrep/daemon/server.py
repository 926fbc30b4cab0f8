"""Running the daemon: uvicorn under anyio, with the signals owned here.

uvicorn installs its own handlers for SIGINT and SIGTERM and, once its server has stopped,
raises the signal again so the process dies of it; a daemon that must exit 0 after a clean
stop cannot have that. Here uvicorn captures nothing: an anyio signal receiver asks the server
to exit, uvicorn stops accepting, lets running requests finish for up to ``shutdown_grace``
seconds and cancels the rest (each answered 503 once its cleanups have run, see
:class:`~blobrep.daemon.observe.RequestLog`), waits for those to unwind, the lifespan ends, the
service closes, and :func:`serve` returns.
Whatever was interrupted (a publish, a replication) is left as crash recovery expects it: the
next open moves it on.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final

import anyio
import uvicorn

from blobrep.daemon import reconcile, uploads
from blobrep.daemon.app import create_app
from blobrep.daemon.observe import json_logging
from blobrep.service import GalleryService

if TYPE_CHECKING:
    from collections.abc import Generator
    from pathlib import Path

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8417
DEFAULT_SHUTDOWN_GRACE: Final = 10.0


#: Seconds the requests cancelled at the end of the grace get to unwind before the service
#: closes: their cleanups (an upload marking its version Failed) write to the catalog.
UNWIND_SECONDS: Final = 5.0


class _Server(uvicorn.Server):
    """uvicorn's server without its signal handling (see the module docstring), and with a
    shutdown that waits for the requests it cancelled to unwind."""

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's shutdown, which cancels the requests still running at the end of the
        grace without waiting for them; then that wait, bounded. Without it the service would
        close under a cancelled upload still recording its failure, which would end in an
        internal error instead of a Failed version."""
        await super().shutdown(sockets)
        if self.server_state.tasks:
            # uvicorn's own asyncio tasks (the server runs on asyncio): waited for, not run.
            await asyncio.wait(set(self.server_state.tasks), timeout=UNWIND_SECONDS)


async def serve(
    home: Path,
    *,
    host: str,
    port: int,
    shutdown_grace: float,
    reconcile_interval: float = reconcile.DEFAULT_INTERVAL,
    upload_idle_timeout: float = uploads.DEFAULT_UPLOAD_IDLE_TIMEOUT,
) -> None:
    """Serve ``home`` on ``host:port`` until SIGTERM or SIGINT, then stop cleanly; the reconcile
    loop passes every ``reconcile_interval`` seconds, and an upload fails after
    ``upload_idle_timeout`` seconds without a byte.

    Raises:
        BlobrepError: the home could not be opened (before anything listens).
        Exception: work beside the requests died (a bug); the server stopped first.
    """
    failures: list[Exception] = []
    # Opened before uvicorn listens: a home that cannot be opened is one clear error here,
    # not a traceback from a failed ASGI startup.
    async with await GalleryService.open(home) as service:

        def stop_on_failure(exc: Exception) -> None:
            failures.append(exc)
            server.should_exit = True

        app = create_app(
            home,
            reconcile_interval=reconcile_interval,
            on_failure=stop_on_failure,
            service=service,
            upload_idle_timeout=upload_idle_timeout,
        )
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            # httptools parses requests and frames bodies in C, without copying a body to frame it.
            http="httptools",
            lifespan="on",
            timeout_graceful_shutdown=max(1, round(shutdown_grace)),
            log_level="warning",
            access_log=False,
            server_header=False,
        )
        server = _Server(config)
        async with anyio.create_task_group() as group:

            async def stop_on_signal() -> None:
                with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                    async for _ in signals:
                        # A second signal gives up the grace, as a second Ctrl-C does in uvicorn.
                        if server.should_exit:
                            server.force_exit = True
                        server.should_exit = True

            group.start_soon(stop_on_signal)
            # JSON lines on standard error for each request and state change (uvicorn's access
            # log is off).
            with json_logging():
                await server.serve()
            group.cancel_scope.cancel()
    if failures:
        # Work beside the requests died: not a clean stop.
        raise failures[0]
