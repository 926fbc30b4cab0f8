"""Operability: ``/metrics``, a request id per request and one JSON log line per request.

:class:`RequestLog` is plain ASGI middleware (Starlette's ``BaseHTTPMiddleware`` would run the
handler in another task and buffer streaming bodies). For every HTTP request it

* picks a request id: the client's ``x-ms-client-request-id`` or ``x-request-id`` when it is
  short and printable (so a caller can follow its own id through the log), a new one otherwise;
  the answer carries it in ``x-ms-request-id`` and handlers find it in
  ``request.state.request_id``;
* counts the answer in :class:`~blobrep.daemon.metrics.Metrics` when its response starts (that
  is when the status is known; a download's body may take minutes more), under the route's
  template, never the path the client sent;
* counts the body bytes each way as they pass, and when the request is over (its body sent, its
  client gone, or its handler failed) writes one line to the ``blobrep.daemon`` logger:
  ``request_id``, ``principal`` (null until a token was accepted), ``method``, ``route``,
  ``path``, ``status``, ``duration_ms`` (to the response's start, as the latency histogram
  counts), ``total_ms`` (to its last byte or its client's departure), ``bytes_in``,
  ``bytes_out``, ``complete`` (the body was sent whole) and ``error`` when one ended it.

Log records become one JSON object per line (:class:`JsonFormatter`), their ``extra`` fields
included, so the reconcile loop's state changes and the request lines are read by one parser.
:func:`json_logging` installs it on standard error for ``blobrep serve``: lines are formatted
where they are logged and written by a thread of their own, so a slow reader of standard error
never stalls the event loop; when it cannot keep up at all, lines are dropped and counted
(``blobrep_log_lines_dropped_total``) rather than held without bound.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import sys
import threading
import time
import uuid
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, TextIO

import anyio
from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.routing import Route

from blobrep.daemon import metrics as families
from blobrep.daemon.metrics import UNMATCHED, Metrics
from blobrep.daemon.scraped import read_at_scrape

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from prometheus_client.metrics_core import Metric
    from starlette.requests import Request
    from starlette.types import ASGIApp, Message, Receive, Scope, Send


__all__ = ["JsonFormatter", "Metrics", "RequestLog", "json_logging", "middleware", "request_id", "routes"]

LOGGER_NAME: Final = "blobrep.daemon"
logger = logging.getLogger(LOGGER_NAME)

#: Request headers a client may name its own request id in, the first acceptable one winning.
CLIENT_ID_HEADERS: Final = (b"x-ms-client-request-id", b"x-request-id")
#: A client's id is kept when it is 1 to 64 visible ASCII characters; anything else is replaced.
_ACCEPTABLE_ID = re.compile(r"[\x21-\x7e]{1,64}")
RESPONSE_ID_HEADER: Final = b"x-ms-request-id"


def routes() -> list[Route]:
    return [Route("/metrics", _metrics, methods=["GET"])]


def middleware() -> list[Middleware]:
    return [Middleware(RequestLog)]


def request_id(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The client's request id if it sent an acceptable one, else a new random one.

    Client ids end up in log lines and a response header, so one that is long or holds
    anything but visible ASCII is not echoed: the request gets an id of the daemon's own.
    """
    sent = dict(headers)
    for name in CLIENT_ID_HEADERS:
        value = sent.get(name)
        if value is not None and _ACCEPTABLE_ID.fullmatch(value.decode("latin-1")):
            return value.decode("ascii")
    return str(uuid.uuid4())


class RequestLog:
    """ASGI middleware: request id, metrics and one log line per HTTP request (module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metrics: Metrics | None = getattr(scope["app"].state, "metrics", None) if "app" in scope else None
        exchange = _Exchange(scope, metrics)
        answer = exchange.wrap_send(send)
        try:
            await self.app(scope, exchange.wrap_receive(receive), answer)
        except anyio.get_cancelled_exc_class() as exc:
            # Only the server cancels a request from outside (a stop whose grace ran out): the
            # request's own cleanups have run, and its client hears why, not an internal error.
            if exchange.status is None and await _stopping(answer):
                return
            exchange.failed(exc)
            raise
        except BaseException as exc:
            exchange.failed(exc)
            raise
        finally:
            exchange.finish()


async def _stopping(send: Send) -> bool:
    """Answer 503 to a request cut short by the daemon stopping; False if that fails too."""
    body = json.dumps(
        {
            "error": {
                "code": "ServiceUnavailable",
                "message": "the daemon is stopping and cut this request short; retry it once the daemon"
                " is back (an upload cut short leaves its version Failed: describe it again first)",
            }
        }
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"5"),
        (b"connection", b"close"),
    ]
    with anyio.CancelScope(shield=True):
        try:
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        except Exception:  # the connection is gone already: nothing to tell
            return False
    return True


class _Exchange:
    """One request as it passes the middleware: what is known of it so far."""

    def __init__(self, scope: Scope, metrics: Metrics | None) -> None:
        self.scope = scope
        self.metrics = metrics
        self.started = time.perf_counter()
        self.id = request_id(scope["headers"])
        scope.setdefault("state", {})["request_id"] = self.id
        self.status: int | None = None
        self.latency: float | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.complete = False
        self.error: str | None = None
        if metrics is not None:
            metrics.started()

    def wrap_receive(self, receive: Receive) -> Receive:
        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.bytes_in += len(message.get("body", b""))
            return message

        return counted

    def wrap_send(self, send: Send) -> Send:
        async def counted(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != RESPONSE_ID_HEADER]
                message = {**message, "headers": [*headers, (RESPONSE_ID_HEADER, self.id.encode())]}
                self.answered(message["status"])
            await send(message)
            if kind == "http.response.body":
                self.bytes_out += len(message.get("body", b""))
                self.complete = not message.get("more_body", False)
            elif kind == "http.response.pathsend":
                self.complete = True

        return counted

    def answered(self, status: int) -> None:
        self.status = status
        self.latency = time.perf_counter() - self.started
        if self.metrics is not None:
            method: str = self.scope["method"]
            self.metrics.answered(self.route, method, status, self.latency)

    def failed(self, exc: BaseException) -> None:
        self.error = type(exc).__name__
        if self.status is None:
            # Nothing was sent: the server answers 500 (or the client is gone already).
            self.answered(500)

    @property
    def route(self) -> str:
        """The template of the route the request matched (set by Starlette's router)."""
        path = getattr(self.scope.get("route"), "path", None)
        return path if isinstance(path, str) else UNMATCHED

    def finish(self) -> None:
        if self.status is None:
            self.answered(500)
        if self.metrics is not None:
            self.metrics.ended()
        state = self.scope.get("state") or {}
        fields: dict[str, Any] = {
            "request_id": self.id,
            "principal": state.get("principal"),
            "method": self.scope["method"],
            "route": self.route,
            "path": self.scope["path"],
            "status": self.status,
            "duration_ms": round((self.latency or 0.0) * 1000, 3),
            "total_ms": round((time.perf_counter() - self.started) * 1000, 3),
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "complete": self.complete,
        }
        if self.error is not None:
            fields["error"] = self.error
        level = logging.ERROR if (self.status or 500) >= 500 else logging.INFO
        logger.log(level, "%s %s %s", fields["method"], fields["path"], self.status, extra=fields)


# --- /metrics ---------------------------------------------------------------------------------


async def _metrics(request: Request) -> Response:
    """The Prometheus exposition: the registry's counters, then what is read at scrape time."""
    state = request.app.state
    scraped = [*await read_at_scrape(state), *_log_lines_dropped()]
    metrics: Metrics = state.metrics
    body, content_type = metrics.render(scraped, request.headers.get("accept"))
    return Response(body, headers={"Content-Type": content_type})


def _log_lines_dropped() -> list[Metric]:
    return [
        families.log_lines_dropped(handler.dropped)
        for handler in logger.handlers
        if isinstance(handler, _BackgroundLines)
    ]


# --- logging ----------------------------------------------------------------------------------

#: Attributes every LogRecord has; any other attribute came from ``extra``.
_RECORD_ATTRIBUTES: Final = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, then the record's ``extra``
    fields as fields of their own (values JSON cannot hold are written as text)."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                document[key] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str, separators=(",", ":"))


class _BackgroundLines(logging.Handler):
    """Formats and writes records on a thread of its own, off the event loop that logs them.

    At most ``capacity`` records wait; past that a record is dropped and counted in
    ``dropped``, so a stream nobody reads costs the daemon neither its event loop nor its
    memory. A record is complete when it is logged (its message and fields are set), so
    formatting it later, elsewhere, writes the same line.
    """

    def __init__(self, stream: TextIO, capacity: int) -> None:
        super().__init__()
        self.dropped = 0
        self._stream = stream
        self._lines: queue.Queue[logging.LogRecord | None] = queue.Queue(capacity)
        self._writer = threading.Thread(target=self._write, name="blobrep-log-writer", daemon=True)
        self._writer.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.put_nowait(record)
        except queue.Full:
            self.dropped += 1  # under the handler's lock (Handler.handle holds it)

    def _line(self, record: logging.LogRecord) -> str | None:
        try:
            return self.format(record)
        except Exception:
            self.handleError(record)
            return None

    def _write(self) -> None:
        while True:
            record = self._lines.get()
            batch: list[str] = []
            while record is not None:
                line = self._line(record)
                if line is not None:
                    batch.append(line)
                try:
                    record = self._lines.get_nowait()
                except queue.Empty:
                    break
            if batch:
                try:
                    self._stream.write("\n".join(batch) + "\n")
                    self._stream.flush()
                except (OSError, ValueError):
                    pass  # standard error is gone: there is nowhere left to say so
            if record is None:
                return

    def close(self, grace: float = 5.0) -> None:
        """Write what is waiting (for up to ``grace`` seconds), then stop the writer."""
        with suppress(queue.Full):
            self._lines.put(None, timeout=grace)
        self._writer.join(timeout=grace)
        super().close()


@contextmanager
def json_logging(stream: TextIO | None = None, capacity: int = 10_000) -> Iterator[None]:
    """Within the block, the ``blobrep.daemon`` loggers write JSON lines to ``stream``
    (standard error by default) at level INFO and above; on leaving, waiting lines are written."""
    handler = _BackgroundLines(stream if stream is not None else sys.stderr, capacity)
    handler.setFormatter(JsonFormatter())
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
        handler.close()
