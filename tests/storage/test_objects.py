"""The object-store store on real S3 and Azure servers: the contract, plus what only a
service over a network can get wrong (credentials, buckets, endpoints, races, cancelling,
retries, server-side copies).

Every test runs against both servers (the ``object_kind`` fixture); see ``conftest.py`` for
where they come from. Faults a real server will not produce on demand (a refused, dropped,
silent or failing connection) come from small loopback servers in front of it or instead
of it.
"""

from __future__ import annotations

import base64
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import anyio
import obstore
import pytest

from blobrep.errors import (
    AlreadyExistsError,
    InvalidKeyError,
    InvalidParameterError,
    NotFoundError,
    PreconditionError,
    StorageAccessDeniedError,
    StorageError,
    StorageMissingBucketError,
    StorageUnreachableError,
)
from blobrep.storage.base import Store
from blobrep.storage.object_url import ObjectKind, ObjectUrl
from blobrep.storage.objects import ObjectStore
from tests.object_servers import SERVICES_HINT, raw_backend, service_environment
from tests.storage.contract import StoreContract, listed, payload
from tests.storage.loopback import failing, loopback, relaying, silent

MIB = 1024 * 1024


class TestObjectStoreContract(StoreContract):
    @pytest.fixture
    def store(self, object_url: ObjectUrl) -> Store:
        return ObjectStore(object_url)

    async def test_the_longest_valid_key_round_trips(self, store: Store) -> None:
        """Object names stop at 1024 characters, the store's prefix included, so the longest
        key is shorter here than the contract's 1023: the longest that fits round-trips, and
        one character more is refused before any request, saying why."""
        assert isinstance(store, ObjectStore)
        room = 1024 - len(store.url.prefix) - 1
        key = key_of_length(room)
        await store.put(key, b"long")

        assert await store.get(key) == b"long"
        assert await store.exists(key)
        assert (await store.stat(key)).size == 4
        assert await listed(store) == [key]
        assert await store.delete(key)
        assert not await store.exists(key)
        with pytest.raises(
            InvalidKeyError, match=f"object stores allow 1024; keys here can have at most {room}"
        ):
            await store.put(key_of_length(room + 1), b"too long")


def key_of_length(length: int) -> str:
    """A valid key of exactly ``length`` characters (segments of at most 201)."""
    key = (("a" * 200 + "/") * (length // 200 + 1))[:length]
    return key[:-1] + "b" if key.endswith("/") else key


# --- settings, credentials and buckets --------------------------------------------------


def endpoint_of(kind: ObjectKind) -> tuple[str, int, str]:
    """Host, port and path of the ``kind`` test server's endpoint."""
    variable = "AWS_ENDPOINT_URL" if kind == "s3" else "AZURE_STORAGE_ENDPOINT"
    parts = urlsplit(service_environment(kind)[variable])
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port, parts.path.rstrip("/")


def wrong_credentials(kind: ObjectKind) -> tuple[dict[str, str], str]:
    """A config with a wrong secret for ``kind``, and that secret."""
    if kind == "s3":
        secret = f"wrong-secret-{uuid.uuid4().hex}"
        return {"secret_access_key": secret}, secret
    secret = base64.b64encode(os.urandom(64)).decode()
    return {"account_key": secret}, secret


async def test_wrong_credentials_are_denied_naming_the_store_and_never_the_secret(
    object_url: ObjectUrl, object_kind: ObjectKind
) -> None:
    config, secret = wrong_credentials(object_kind)
    real_secret = os.environ["AWS_SECRET_ACCESS_KEY" if object_kind == "s3" else "AZURE_STORAGE_ACCOUNT_KEY"]
    store = ObjectStore(object_url, config=config)
    calls: list[Callable[[], Awaitable[object]]] = [
        store.check,
        lambda: store.get("k"),
        lambda: store.put("k", b"value"),
        lambda: store.stat("k"),
        lambda: listed(store, "a/b"),
    ]

    for call in calls:
        with pytest.raises(StorageAccessDeniedError) as caught:
            await call()
        message = str(caught.value)
        assert f"access denied to {object_url}" in message
        assert "check the credentials" in message
        assert secret not in message and real_secret not in message
    for text in (repr(store), str(store), store.name):
        assert secret not in text and real_secret not in text


async def test_check_passes_on_the_test_bucket(object_url: ObjectUrl) -> None:
    store = ObjectStore(object_url)
    await store.check()
    await store.put("k", b"value")

    await store.check()


async def test_a_bucket_that_does_not_exist_is_named_as_missing(object_kind: ObjectKind) -> None:
    service_environment(object_kind)
    missing = ObjectUrl(object_kind, f"blobrep-missing-{uuid.uuid4().hex[:12]}", "p")
    store = ObjectStore(missing)
    noun = "S3 bucket" if object_kind == "s3" else "Azure container"

    with pytest.raises(StorageMissingBucketError) as caught:
        await store.check()

    assert f"{noun} {missing.bucket!r} does not exist" in str(caught.value)
    assert "create it, or correct the store's URL" in str(caught.value)
    with pytest.raises(StorageMissingBucketError):
        await listed(store)
    with pytest.raises(StorageMissingBucketError):
        await store.get("k")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_a_closed_port_is_unreachable_within_seconds(object_kind: ObjectKind) -> None:
    _, _, path = endpoint_of(object_kind)
    port = closed_port()
    url = ObjectUrl(object_kind, "blobrep-test", "x")
    store = ObjectStore(url, config={"endpoint": f"http://127.0.0.1:{port}{path}"})

    for call in (store.check, lambda: store.get("k"), lambda: store.put("k", b"v")):
        started = time.monotonic()
        with pytest.raises(StorageUnreachableError) as caught:
            await call()
        assert time.monotonic() - started < 5
        message = str(caught.value)
        assert f"cannot reach {url} at http://127.0.0.1:{port}: connection refused" in message
        assert caught.value.retryable


async def test_plain_http_needs_allow_http(
    object_url: ObjectUrl, object_kind: ObjectKind, monkeypatch: pytest.MonkeyPatch
) -> None:
    variable = "AWS_ALLOW_HTTP" if object_kind == "s3" else "AZURE_ALLOW_HTTP"
    monkeypatch.delenv(variable)

    with pytest.raises(
        StorageError, match=f"is plain http, which is refused unless allowed: set {variable}=true"
    ):
        await ObjectStore(object_url).check()
    await ObjectStore(object_url, config={"allow_http": "true"}).check()


async def test_a_setting_obstore_does_not_know_is_refused_at_construction(object_url: ObjectUrl) -> None:
    with pytest.raises(InvalidParameterError, match="'no_such_setting' is not valid"):
        ObjectStore(object_url, config={"no_such_setting": "x"})


async def test_a_key_lives_at_prefix_slash_key(object_url: ObjectUrl) -> None:
    store = ObjectStore(object_url)
    await store.put("galleries/g/chunks/ab/cd/x", b"chunk")

    meta = await obstore.head_async(
        raw_backend(object_url), f"{object_url.prefix}/galleries/g/chunks/ab/cd/x"
    )

    assert meta["size"] == 5


async def test_listing_skips_objects_that_are_not_valid_keys(object_url: ObjectUrl) -> None:
    backend = raw_backend(object_url)
    for name in ("good", "bad name", "dir/a~b", "dir/ok"):
        await obstore.put_async(backend, f"{object_url.prefix}/{name}", b"x")

    store = ObjectStore(object_url)

    assert await listed(store) == ["dir/ok", "good"]
    assert await listed(store, "d") == ["dir/ok"]


# --- races ------------------------------------------------------------------------------


async def test_two_concurrent_creates_let_exactly_one_win(object_url: ObjectUrl) -> None:
    store = ObjectStore(object_url)
    for round_ in range(5):
        key = f"manifest-{round_}"
        outcomes: dict[int, BaseException | None] = {}

        async def create(
            writer: int, key: str = key, outcomes: dict[int, BaseException | None] = outcomes
        ) -> None:
            try:
                await store.put(key, payload(1000, writer), if_absent=True)
            except AlreadyExistsError as exc:
                outcomes[writer] = exc
            else:
                outcomes[writer] = None

        async with anyio.create_task_group() as tg:
            tg.start_soon(create, 1)
            tg.start_soon(create, 2)

        winners = [writer for writer, error in outcomes.items() if error is None]
        assert len(winners) == 1
        loser = 3 - winners[0]
        assert key in str(outcomes[loser])
        assert await store.get(key) == payload(1000, winners[0])


async def test_put_if_absent_returns_the_etag_and_a_second_create_conflicts(object_url: ObjectUrl) -> None:
    store = ObjectStore(object_url)
    etag = await store.put_if_absent("lease", b"first")

    with pytest.raises(AlreadyExistsError, match="lease"):
        await store.put_if_absent("lease", b"second")

    assert await store.get_with_etag("lease") == (b"first", etag)


async def test_racing_put_if_match_lets_exactly_one_writer_win(object_url: ObjectUrl) -> None:
    store = ObjectStore(object_url)
    etag = await store.put_if_absent("lease", b"v0")
    results: dict[bytes, str | PreconditionError] = {}

    async def renew(body: bytes) -> None:
        try:
            results[body] = await store.put_if_match("lease", body, etag)
        except PreconditionError as exc:
            results[body] = exc

    async with anyio.create_task_group() as tg:
        tg.start_soon(renew, b"writer-a")
        tg.start_soon(renew, b"writer-b")

    winners = {body: new for body, new in results.items() if isinstance(new, str)}
    assert len(winners) == 1
    ((body, new_etag),) = winners.items()
    assert await store.get_with_etag("lease") == (body, new_etag)
    with pytest.raises(PreconditionError, match="lease"):
        await store.put_if_match("lease", b"stale writer", etag)
    assert await store.get("lease") == body


async def test_put_if_match_of_a_missing_key_fails_its_precondition(object_url: ObjectUrl) -> None:
    store = ObjectStore(object_url)
    etag = await store.put_if_absent("lease", b"v0")
    await store.delete("lease")

    with pytest.raises(PreconditionError):
        await store.put_if_match("lease", b"v1", etag)
    assert not await store.exists("lease")


# --- faults from loopback servers in front of (or instead of) the real one --------------


def store_at(url: ObjectUrl, port: int) -> ObjectStore:
    """``url``'s store, reached through a loopback server on ``port``."""
    _, _, path = endpoint_of(url.kind)
    return ObjectStore(url, config={"endpoint": f"http://127.0.0.1:{port}{path}"})


async def test_cancelling_an_in_flight_get_or_put_drops_its_connection(object_url: ObjectUrl) -> None:
    async with loopback(silent) as (port, traffic):
        store = store_at(object_url, port)
        for call in (lambda: store.get("k"), lambda: store.put("k", payload(256 * 1024))):
            started = time.monotonic()
            with anyio.move_on_after(0.3) as scope:
                await call()
            assert scope.cancelled_caught
            assert time.monotonic() - started < 2
        with anyio.fail_after(5):
            await traffic.all_closed.wait()

    assert traffic.connections >= 2


async def test_a_get_cancelled_on_the_real_server_leaves_the_store_usable(object_url: ObjectUrl) -> None:
    store = ObjectStore(object_url)
    value = payload(16 * MIB)
    await store.put("big", value)

    with anyio.move_on_after(0.002) as scope:
        await store.get("big")

    assert scope.cancelled_caught
    assert await store.get("big") == value


async def test_dropped_connections_are_retried_inside_the_store(object_url: ObjectUrl) -> None:
    host, port, _ = endpoint_of(object_url.kind)
    await ObjectStore(object_url).put("k", b"value")

    async with loopback(relaying(host, port, drop_first=2)) as (relay_port, traffic):
        assert await store_at(object_url, relay_port).get("k") == b"value"

    assert traffic.connections == 3


async def test_a_failing_server_is_retried_four_times_then_reported(object_url: ObjectUrl) -> None:
    async with loopback(failing) as (port, traffic):
        store = store_at(object_url, port)
        started = time.monotonic()
        with pytest.raises(StorageError, match="503") as caught:
            await store.get("k")

    assert time.monotonic() - started < 10
    assert traffic.connections == 5
    assert f"{object_url}: reading k failed" in str(caught.value)


async def test_a_ranged_get_moves_only_the_range(object_url: ObjectUrl) -> None:
    host, port, _ = endpoint_of(object_url.kind)
    value = payload(4 * MIB)
    await ObjectStore(object_url).put("big", value)

    async with loopback(relaying(host, port)) as (relay_port, traffic):
        store = store_at(object_url, relay_port)
        assert await store.get("big", MIB, 1000) == value[MIB : MIB + 1000]
        assert await store.get("big", 4 * MIB) == b""
        assert await store.get("big", 4 * MIB - 10, 100) == value[-10:]

    assert traffic.to_client < 64 * 1024


# --- server-side copies -----------------------------------------------------------------


async def test_copy_from_a_store_in_the_same_bucket_copies_inside_the_service(object_url: ObjectUrl) -> None:
    source = ObjectStore(object_url.child("source"), name="source replica")
    target = ObjectStore(object_url.child("target"))
    value = payload(100_000)
    await source.put("chunks/c1", value)

    assert await target.copy_from(source, "chunks/c1") is True
    assert await target.get("chunks/c1") == value
    assert await target.copy_from(source, "chunks/c1") is True  # same bytes again: fine
    assert await target.get("chunks/c1") == value
    assert await source.copy_from(source, "chunks/c1") is True
    with pytest.raises(NotFoundError, match="chunks/missing not found in source replica"):
        await target.copy_from(source, "chunks/missing")


async def test_copy_from_another_bucket_or_service_is_not_possible(object_url: ObjectUrl) -> None:
    service_environment("s3")
    service_environment("azure")
    target = ObjectStore(object_url)
    other_kind: ObjectKind = "azure" if object_url.kind == "s3" else "s3"
    elsewhere = [
        ObjectStore(ObjectUrl(other_kind, object_url.bucket, object_url.prefix)),
        ObjectStore(ObjectUrl(object_url.kind, "blobrep-other", object_url.prefix)),
        ObjectStore(object_url, config={"endpoint": "http://127.0.0.1:9/devstoreaccount1"}),
    ]

    for source in elsewhere:
        assert await target.copy_from(source, "chunks/c1") is False
    assert await listed(target) == []


def test_a_missing_variable_fails_saying_how_to_start_the_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BLOBREP_TEST_S3_URL", raising=False)

    with pytest.raises(pytest.fail.Exception, match="BLOBREP_TEST_S3_URL not set") as caught:
        service_environment("s3")

    assert SERVICES_HINT in str(caught.value)
