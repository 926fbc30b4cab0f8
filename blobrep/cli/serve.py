"""``blobrep serve``: run the daemon on this home (see :mod:`blobrep.daemon`)."""

from __future__ import annotations

import argparse
from typing import Any

from blobrep.cli import _types


def register(commands: Any) -> None:
    from blobrep.daemon.reconcile import DEFAULT_INTERVAL
    from blobrep.daemon.server import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_SHUTDOWN_GRACE
    from blobrep.daemon.uploads import DEFAULT_UPLOAD_IDLE_TIMEOUT

    parser = commands.add_parser("serve", help="serve the gallery API over HTTP until SIGTERM or Ctrl-C")
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST}: loopback only; another address must be given)",
    )
    parser.add_argument(
        "--port",
        type=_types.Integer(1, 65535),
        default=DEFAULT_PORT,
        help=f"TCP port (default {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--shutdown-grace",
        type=_types.Duration(0.0, 3600.0),
        default=DEFAULT_SHUTDOWN_GRACE,
        help="seconds running requests may take to finish after SIGTERM (default 10s)",
    )
    parser.add_argument(
        "--reconcile-interval",
        type=_types.Duration(0.01, 3600.0),
        default=DEFAULT_INTERVAL,
        help=f"most seconds between two passes of the replication loop (default {DEFAULT_INTERVAL:g}s);"
        " failed regions are retried after 5 intervals, then ever longer",
    )
    parser.add_argument(
        "--upload-idle-timeout",
        type=_types.Duration(0.1, 3600.0),
        default=DEFAULT_UPLOAD_IDLE_TIMEOUT,
        help="seconds a disk's upload may go without a byte arriving before it fails and frees the"
        f" version (default {DEFAULT_UPLOAD_IDLE_TIMEOUT:g}s)",
    )
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    import anyio

    from blobrep.daemon.memory import limit_malloc_arenas
    from blobrep.daemon.server import serve

    limit_malloc_arenas()  # before any worker thread allocates
    anyio.run(
        lambda: serve(
            args.home,
            host=args.host,
            port=args.port,
            shutdown_grace=args.shutdown_grace,
            reconcile_interval=args.reconcile_interval,
            upload_idle_timeout=args.upload_idle_timeout,
        ),
        # uvloop: the event loop in C, which carries every request and every byte served.
        backend_options={"use_uvloop": True},
    )
    return 0
