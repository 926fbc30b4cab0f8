"""The connection to a daemon: tokens, paging, links, and failures of the transport, each
becoming one error that names the endpoint and never the token (through httpx2's mock
transport: no server needed to answer these)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import anyio
import httpx2
import pytest

from blobrep.client.connection import Connection, check_token
from blobrep.client.errors import EndpointError
from blobrep.errors import ResourceNotFoundError, UnauthenticatedError

ENDPOINT = "http://daemon.test:8417"
TOKEN = "brp_tok_0123456789ab_" + "A" * 43

Handler = Callable[[httpx2.Request], httpx2.Response]


def run(handler: Handler, job: Callable[[Connection], Any]) -> Any:
    async def main() -> Any:
        async with Connection(ENDPOINT, TOKEN, transport=httpx2.MockTransport(handler)) as connection:
            return await job(connection)

    return anyio.run(main)


def test_every_request_carries_the_token() -> None:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json={})

    run(handler, lambda connection: connection.document("GET", "/galleries/g"))
    assert seen[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert str(seen[0].url) == f"{ENDPOINT}/galleries/g"


def test_a_listing_follows_next_link_to_the_last_page() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        skip = int(request.url.params.get("$skipToken", "0"))
        more = f"{ENDPOINT}/galleries?$skipToken={skip + 2}" if skip < 4 else None
        return httpx2.Response(200, json={"value": [{"n": skip}, {"n": skip + 1}], "nextLink": more})

    items = run(handler, lambda connection: connection.listing("/galleries"))
    assert [item["n"] for item in items] == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    "link",
    [
        "http://elsewhere.test:8417/galleries?$skipToken=2",
        "https://daemon.test:8417/x",
        "http://daemon.test:1/x",
    ],
)
def test_a_link_off_the_daemon_is_refused_before_the_token_goes_there(link: str) -> None:
    hosts: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        hosts.append(request.url.host)
        return httpx2.Response(200, json={"value": [], "nextLink": link})

    with pytest.raises(EndpointError, match="not on the daemon"):
        run(handler, lambda connection: connection.listing("/galleries"))
    assert hosts == ["daemon.test"]


def test_a_failure_answer_is_raised_as_its_error() -> None:
    body = {"error": {"code": "ResourceNotFound", "message": "gallery 'g' not found"}}

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(404, json=body)

    with pytest.raises(ResourceNotFoundError, match=r"^gallery 'g' not found$"):
        run(handler, lambda connection: connection.document("GET", "/galleries/g"))


def test_a_redirect_is_not_followed() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(307, headers={"Location": "http://elsewhere.test/galleries"})

    with pytest.raises(EndpointError, match=re.escape("redirect to http://elsewhere.test/galleries")):
        run(handler, lambda connection: connection.document("GET", "/galleries"))


def test_a_body_that_is_no_json_object_is_an_endpoint_error() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=b"[1, 2]")

    with pytest.raises(EndpointError, match="not a JSON object"):
        run(handler, lambda connection: connection.document("GET", "/galleries/g"))


@pytest.mark.parametrize(
    ("failure", "said"),
    [
        (httpx2.ConnectError("All connection attempts failed"), "cannot reach the daemon at"),
        (httpx2.ReadTimeout("timed out"), "did not answer GET /galleries in time"),
        (httpx2.RemoteProtocolError("peer closed connection"), "RemoteProtocolError: peer closed"),
    ],
)
def test_a_transport_failure_is_one_endpoint_error_without_the_token(failure: Exception, said: str) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise failure

    with pytest.raises(EndpointError) as raised:
        run(handler, lambda connection: connection.document("GET", "/galleries"))
    assert said in str(raised.value) and TOKEN not in str(raised.value)
    assert "\n" not in str(raised.value)


def test_connection_refused_says_so() -> None:
    async def main() -> None:
        async with Connection("http://127.0.0.1:1", TOKEN) as connection:
            await connection.document("GET", "/galleries")

    with pytest.raises(
        EndpointError,
        match="^" + re.escape("cannot reach the daemon at http://127.0.0.1:1: connection refused"),
    ):
        anyio.run(main)


@pytest.mark.parametrize("token", [None, "", "   "])
def test_no_token_says_where_to_give_one(token: str | None) -> None:
    with pytest.raises(UnauthenticatedError, match="give --token or set BLOBREP_TOKEN"):
        check_token(token)


@pytest.mark.parametrize("token", ["brp tok", "brp\ntok", "brp\x00tok", "brp_tök"])
def test_a_token_that_cannot_be_sent_is_refused_without_repeating_it(token: str) -> None:
    with pytest.raises(UnauthenticatedError) as raised:
        check_token(token)
    assert token not in str(raised.value)


def test_an_error_document_names_the_request() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            404, content=json.dumps({"error": {"code": "NotFound", "message": "no route"}})
        )

    with pytest.raises(
        EndpointError, match=re.escape(f"GET {ENDPOINT}/galleries/g/x answered 404: no route")
    ):
        run(handler, lambda connection: connection.document("GET", "/galleries/g/x"))
