"""Operability: ``/metrics`` in Prometheus text, a request id, one JSON log line per request.

The daemon tests run against a real ``blobrep serve``; the module's daemon is stopped once its
requests are made, so that its whole standard error (the log) can be read. The streaming and
scrape-time-source cases drive the ASGI application in process, where a client can be made to
vanish mid-body and the shared readers and reconcile loop can be stood in for.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import Message

from blobrep.core.gallery import ReplicationState
from blobrep.daemon import observe
from blobrep.daemon.observe import JsonFormatter, Metrics, json_logging, request_id
from tests.daemon.conftest import GALLERY, Daemon, stop

GALLERY_ROUTE = "/galleries/{gallery}"
LOG_FIELDS = {
    "time",
    "level",
    "logger",
    "message",
    "request_id",
    "principal",
    "method",
    "route",
    "path",
    "status",
    "duration_ms",
    "bytes_in",
    "bytes_out",
}


@dataclass(frozen=True)
class Observed:
    """What the module's daemon answered, showed on ``/metrics`` and logged."""

    responses: dict[str, httpx.Response]
    before: dict[tuple[str, frozenset[tuple[str, str]]], float]
    after: dict[tuple[str, frozenset[tuple[str, str]]], float]
    metrics_response: httpx.Response
    log: list[dict[str, Any]]

    def line(self, name: str) -> dict[str, Any]:
        """The one log line of the request ``name``, found by the id its response carried."""
        rid = self.responses[name].headers["x-ms-request-id"]
        lines = [line for line in self.log if line.get("request_id") == rid]
        assert len(lines) == 1, (name, rid, lines)
        return lines[0]

    def moved(self, name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return self.after.get(key, 0.0) - self.before.get(key, 0.0)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text page by name and labels (the parser rejects bad text)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture(scope="module")
def observed(daemon: Daemon) -> Observed:
    """A scrape, a request of each kind, a second scrape, then the daemon stopped for its log."""
    before = samples(daemon.get("/metrics", principal=None).text)
    body = json.dumps({"location": "westcentralus"}).encode()
    admin = daemon.headers()
    requests = {
        "found": ("GET", f"/galleries/{GALLERY}", {**admin, "x-ms-client-request-id": "build-42:step.7"}),
        "missing": ("GET", "/galleries/nope", admin),
        "anonymous": ("GET", f"/galleries/{GALLERY}", {}),
        "unrouted": ("GET", "/no/such/route", admin),
        "created": ("PUT", "/galleries/made", {**admin, "content-type": "application/json"}),
        "long id": ("GET", f"/galleries/{GALLERY}", {**admin, "x-request-id": "a" * 65}),
        "spaced id": ("GET", f"/galleries/{GALLERY}", {**admin, "x-ms-client-request-id": "a b"}),
    }
    responses = {
        name: httpx.request(
            method, daemon.url + path, headers=headers, timeout=30, content=body if method == "PUT" else None
        )
        for name, (method, path, headers) in requests.items()
    }
    # Bytes past ASCII: httpx sends them as they are.
    responses["binary id"] = httpx.get(
        daemon.url + f"/galleries/{GALLERY}",
        headers=[(b"authorization", admin["Authorization"].encode()), (b"x-request-id", b"caf\xe9")],
        timeout=30,
    )
    metrics_response = daemon.get("/metrics", principal=None)
    code, err = stop(daemon.process)
    assert code == 0, err
    log = [json.loads(line) for line in err.splitlines() if line.strip()]
    return Observed(responses, before, samples(metrics_response.text), metrics_response, log)


def test_metrics_page_is_prometheus_text_without_a_token(observed: Observed) -> None:
    assert observed.metrics_response.status_code == 200
    assert observed.metrics_response.headers["content-type"].startswith("text/plain")
    names = {name for name, _ in observed.after}
    assert {
        "blobrep_http_requests_total",
        "blobrep_http_request_duration_seconds_count",
        "blobrep_uploaded_bytes_total",
        "blobrep_served_bytes_total",
        "blobrep_replication_bytes_total",
        "blobrep_http_requests_in_flight",
        "blobrep_log_lines_dropped_total",
    } <= names


def test_catalog_reads_answered_from_kept_answers_are_counted(observed: Observed) -> None:
    """The same gallery read by several requests with no write between: the later ones are
    answered from what the catalog's connection had decoded, and the page says how often."""
    none: frozenset[tuple[str, str]] = frozenset()
    kept, decoded = (
        ("blobrep_catalog_cached_reads_total", none),
        ("blobrep_catalog_decoded_reads_total", none),
    )
    assert observed.after[kept] > observed.before.get(kept, 0)
    assert observed.after[decoded] > 0


def test_requests_are_counted_by_route_template_method_and_status(observed: Observed) -> None:
    def moved(route: str, status: str, method: str = "GET") -> float:
        return observed.moved("blobrep_http_requests_total", route=route, method=method, status=status)

    # found, long id, spaced id, binary id: four 200s; one 404 and one 401 on the same route.
    assert moved(GALLERY_ROUTE, "200") == 4
    assert moved(GALLERY_ROUTE, "404") == 1
    assert moved(GALLERY_ROUTE, "401") == 1
    assert moved(GALLERY_ROUTE, "201", "PUT") == 1
    assert moved("unmatched", "404") == 1
    routes = {dict(labels).get("route") for _, labels in observed.after}
    assert not routes & {f"/galleries/{GALLERY}", "/galleries/nope", "/no/such/route", "/galleries/made"}


def test_latency_histogram_counts_each_answer_of_a_route(observed: Observed) -> None:
    count = observed.moved("blobrep_http_request_duration_seconds_count", route=GALLERY_ROUTE)
    assert count == 7  # the six GETs and the PUT
    buckets = sorted(
        (float(dict(labels)["le"]), value)
        for (name, labels), value in observed.after.items()
        if name == "blobrep_http_request_duration_seconds_bucket" and dict(labels)["route"] == GALLERY_ROUTE
    )
    assert buckets[-1] == (float("inf"), 7)
    assert [value for _, value in buckets] == sorted(value for _, value in buckets)
    assert observed.moved("blobrep_http_request_duration_seconds_sum", route=GALLERY_ROUTE) > 0


def test_region_states_count_versions_per_region_and_state(observed: Observed) -> None:
    def versions(state: ReplicationState) -> float:
        return observed.after[
            ("blobrep_region_versions", frozenset({("region", "westcentralus"), ("state", state.value)}))
        ]

    assert versions(ReplicationState.COMPLETED) == 2  # 1.0.0 and 1.0.1
    assert versions(ReplicationState.FAILED) == 0


def test_each_request_writes_one_json_line_with_its_facts(observed: Observed) -> None:
    found = observed.line("found")
    assert found.keys() >= LOG_FIELDS
    assert found["logger"] == "blobrep.daemon"
    assert (found["principal"], found["method"], found["route"], found["status"]) == (
        "admin",
        "GET",
        GALLERY_ROUTE,
        200,
    )
    assert found["path"] == f"/galleries/{GALLERY}"
    assert found["bytes_out"] == len(observed.responses["found"].content)
    assert found["duration_ms"] >= 0
    created = observed.line("created")
    assert (created["method"], created["status"], created["bytes_in"]) == (
        "PUT",
        201,
        len(b'{"location": "westcentralus"}'),
    )
    assert observed.line("missing")["status"] == 404
    unrouted = observed.line("unrouted")
    assert (unrouted["route"], unrouted["status"]) == ("unmatched", 404)


def test_an_unauthenticated_request_is_logged_with_no_principal(observed: Observed) -> None:
    line = observed.line("anonymous")
    assert (line["status"], line["principal"], line["route"]) == (401, None, GALLERY_ROUTE)


def test_a_clients_request_id_is_echoed_and_logged(observed: Observed) -> None:
    assert observed.responses["found"].headers["x-ms-request-id"] == "build-42:step.7"
    assert observed.line("found")["request_id"] == "build-42:step.7"


@pytest.mark.parametrize("name", ["long id", "spaced id", "binary id"])
def test_a_hostile_request_id_is_replaced(observed: Observed, name: str) -> None:
    rid = observed.responses[name].headers["x-ms-request-id"]
    assert rid not in {"a" * 65, "a b", "caf\xe9"}
    assert 0 < len(rid) <= 64 and rid.isascii() and rid.isprintable()
    assert observed.line(name)["status"] == 200


def test_every_answer_has_a_distinct_request_id(observed: Observed) -> None:
    ids = [response.headers["x-ms-request-id"] for response in observed.responses.values()]
    assert len(set(ids)) == len(ids)


# --- request ids, the formatter and the writer, without a server -----------------------------


@given(st.binary(max_size=100))
def test_a_client_id_is_kept_only_when_short_visible_ascii(value: bytes) -> None:
    chosen = request_id([(b"x-ms-client-request-id", value)])
    acceptable = 0 < len(value) <= 64 and all(0x21 <= byte <= 0x7E for byte in value)
    assert (chosen == value.decode("latin-1")) is acceptable
    assert 0 < len(chosen) <= 64 and chosen.isascii() and chosen.isprintable() and " " not in chosen


def test_an_x_ms_client_request_id_wins_over_x_request_id() -> None:
    assert request_id([(b"x-request-id", b"second"), (b"x-ms-client-request-id", b"first")]) == "first"
    assert request_id([(b"x-request-id", b"second"), (b"x-ms-client-request-id", b"no good")]) == "second"


def test_structured_extras_become_json_fields() -> None:
    record = logging.makeLogRecord(
        {
            "name": "blobrep.daemon.reconcile",
            "levelno": logging.INFO,
            "levelname": "INFO",
            "msg": "region %s is %s",
            "args": ("eastus", "Completed"),
            "gallery": "gal",
            "state": ReplicationState.COMPLETED,
            "replicas": {"completed": 2},
            "when": object(),
        }
    )
    document = json.loads(JsonFormatter().format(record))
    assert document["message"] == "region eastus is Completed"
    assert document["logger"] == "blobrep.daemon.reconcile"
    assert (document["gallery"], document["state"], document["replicas"]) == (
        "gal",
        "Completed",
        {"completed": 2},
    )
    assert document["when"].startswith("<object object")
    assert "args" not in document and "msg" not in document


class _StuckStream(io.StringIO):
    """Standard error that nobody reads until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.release.wait(5)
        return super().write(text)


def test_a_stuck_standard_error_drops_lines_instead_of_blocking_the_logger() -> None:
    stream = _StuckStream()
    with json_logging(stream, capacity=3):
        for number in range(20):
            observe.logger.info("line %d", number)  # would block here if writes were inline
        dropped = sum(handler.dropped for handler in observe.logger.handlers if hasattr(handler, "dropped"))
        stream.release.set()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert dropped > 0  # the queue holds 3 lines and the writer a few more while it is stuck
    assert len(lines) == 20 - dropped
    assert lines[0]["message"] == "line 0"


# --- streaming and scrape-time sources, in process --------------------------------------------


def _streaming_app() -> Starlette:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * 1000

    async def download(request: Request) -> Response:
        request.scope["state"]["principal"] = "fleet"
        return StreamingResponse(chunks(), headers={"content-length": "4000"})

    app = Starlette(routes=[Route("/disks/{disk}", download)], middleware=observe.middleware())
    app.state.metrics = Metrics()
    return app


async def _call(app: Starlette, accept_bodies: int) -> tuple[list[Message], Exception | None]:
    """One GET of ``/disks/d1`` by a client that goes away after ``accept_bodies`` body
    messages: what it was sent, and what the application raised."""
    sent: list[Message] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/disks/d1",
        "raw_path": b"/disks/d1",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"x-request-id", b"dl-1")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
        "state": {},
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        bodies = sum(1 for m in sent if m["type"] == "http.response.body")
        if message["type"] == "http.response.body" and bodies >= accept_bodies:
            raise OSError("connection reset by peer")
        sent.append(message)

    try:
        await app(scope, receive, send)
    except Exception as exc:
        return sent, exc
    return sent, None


def _request_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if getattr(record, "request_id", None) == "dl-1"]


async def test_a_client_gone_mid_body_still_gives_one_line_with_the_bytes_it_got(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = _streaming_app()
    with caplog.at_level(logging.INFO, logger="blobrep.daemon"):
        sent, error = await _call(app, accept_bodies=2)
    assert error is not None  # the server's send failed; the application gives up the response
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body", "http.response.body"]
    assert (b"x-ms-request-id", b"dl-1") in sent[0]["headers"]
    (line,) = _request_lines(caplog)
    fields = vars(line)
    assert (fields["status"], fields["route"], fields["principal"]) == (200, "/disks/{disk}", "fleet")
    assert (fields["bytes_out"], fields["complete"]) == (2000, False)
    page = samples(app.state.metrics.render([], None)[0].decode())
    key = frozenset({("route", "/disks/{disk}"), ("method", "GET"), ("status", "200")})
    assert page[("blobrep_http_requests_total", key)] == 1
    assert page[("blobrep_http_requests_in_flight", frozenset())] == 0


async def test_a_whole_stream_is_logged_complete(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="blobrep.daemon"):
        _, error = await _call(_streaming_app(), accept_bodies=5)
    assert error is None
    (line,) = _request_lines(caplog)
    assert (vars(line)["bytes_out"], vars(line)["complete"]) == (4000, True)


@dataclass(frozen=True)
class _Row:
    region: str
    replica: str
    bytes_served: int
    requests: int
    failures: int


@dataclass(frozen=True)
class _Statistics:
    replicas: tuple[_Row, ...]
    failovers: int
    repairs: int
    open: int
    opened: int
    budget_held: int
    budget_capacity: int
    budget_waits: int


class _Readers:
    def replica_statistics(self) -> _Statistics:
        rows = (_Row("eastus", "1", 4096, 3, 0), _Row("eastus", "2", 0, 1, 1))
        return _Statistics(
            rows,
            failovers=1,
            repairs=2,
            open=1,
            opened=4,
            budget_held=512,
            budget_capacity=2048,
            budget_waits=7,
        )


@dataclass(frozen=True)
class _LoopStatistics:
    passes: int
    last_pass: float | None
    lag: float
    behind: int
    retrying: int
    given_up: int


class _Reconciler:
    def statistics(self) -> _LoopStatistics:
        return _LoopStatistics(passes=3, last_pass=None, lag=1.5, behind=2, retrying=1, given_up=0)


class _LagOnly:
    async def lag(self) -> float:
        return 0.25


@pytest.fixture
def scraped_app() -> Iterator[TestClient]:
    app = Starlette(routes=observe.routes(), middleware=observe.middleware())
    app.state.metrics = Metrics()
    with TestClient(app) as client:
        yield client


def test_replica_statistics_and_reconcile_lag_are_read_at_scrape_time(scraped_app: TestClient) -> None:
    app: Any = scraped_app.app
    without = samples(scraped_app.get("/metrics").text)
    assert not any(name.startswith(("blobrep_replica_", "blobrep_reconcile_")) for name, _ in without)
    app.state.readers = _Readers()
    app.state.reconciler = _Reconciler()
    app.state.metrics.served(4096)
    page = samples(scraped_app.get("/metrics").text)
    replica = frozenset({("region", "eastus"), ("replica", "1")})
    assert page[("blobrep_replica_served_bytes_total", replica)] == 4096
    assert page[("blobrep_replica_requests_total", replica)] == 3
    assert page[("blobrep_replica_failures_total", frozenset({("region", "eastus"), ("replica", "2")}))] == 1
    assert page[("blobrep_reader_failovers_total", frozenset())] == 1
    assert page[("blobrep_reader_repairs_total", frozenset())] == 2
    assert page[("blobrep_readers_open", frozenset())] == 1
    assert page[("blobrep_readers_opened_total", frozenset())] == 4
    assert page[("blobrep_download_budget_held_bytes", frozenset())] == 512
    assert page[("blobrep_download_budget_bytes", frozenset())] == 2048
    assert page[("blobrep_download_budget_waits_total", frozenset())] == 7
    assert page[("blobrep_reconcile_lag_seconds", frozenset())] == 1.5
    assert page[("blobrep_reconcile_passes_total", frozenset())] == 3
    assert page[("blobrep_reconcile_behind_regions", frozenset())] == 2
    assert page[("blobrep_reconcile_retrying_regions", frozenset())] == 1
    assert ("blobrep_reconcile_last_pass_timestamp_seconds", frozenset()) not in page  # no pass yet
    assert page[("blobrep_served_bytes_total", frozenset())] == 4096
    assert not any(name.endswith("_created") for name, _ in page)  # a series each, for nothing
    app.state.reconciler = _LagOnly()
    assert samples(scraped_app.get("/metrics").text)[("blobrep_reconcile_lag_seconds", frozenset())] == 0.25


def test_openmetrics_is_served_to_a_scraper_that_asks_for_it(scraped_app: TestClient) -> None:
    response = scraped_app.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")
    names = {family.name for family in openmetrics_families(response.text)}  # type: ignore[no-untyped-call]
    assert {"blobrep_http_requests", "blobrep_served_bytes"} <= names


def test_a_reader_pool_of_another_shape_is_left_out_not_fatal(
    scraped_app: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    app: Any = scraped_app.app

    class Odd:
        def replica_statistics(self) -> list[tuple[str, str]]:
            return [("eastus", "1")]

    app.state.readers = Odd()
    with caplog.at_level(logging.WARNING, logger="blobrep.daemon"):
        response = scraped_app.get("/metrics")
    assert response.status_code == 200
    page = samples(response.text)
    assert not any(name.startswith(("blobrep_replica_", "blobrep_reader_")) for name, _ in page)
    assert ("blobrep_served_bytes_total", frozenset()) in page
    assert any("replica statistics left out" in record.getMessage() for record in caplog.records)
