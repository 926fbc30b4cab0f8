"""Version writes over HTTP: describe, upload the disk, PATCH, DELETE, and their operations."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from blobrep.service import SyntheticImage
from tests.daemon.conftest import GALLERY, IMAGE, Daemon, ok, start, stop
from tests.daemon.raw_http import hang_up, raw_put, response

VERSIONS = f"/galleries/{GALLERY}/images/{IMAGE}/versions"


def describe(
    daemon: Daemon, version: str, body: dict[str, Any] | None = None, principal: str = "admin"
) -> httpx.Response:
    return httpx.put(
        f"{daemon.url}{VERSIONS}/{version}",
        json=body if body is not None else {"properties": {}},
        headers=daemon.headers(principal),
        timeout=30,
    )


def upload(
    daemon: Daemon, version: str, data: bytes | Iterator[bytes], principal: str = "admin"
) -> httpx.Response:
    return httpx.put(
        f"{daemon.url}{VERSIONS}/{version}/content",
        content=data,
        headers=daemon.headers(principal),
        timeout=60,
    )


def operation(
    daemon: Daemon, response: httpx.Response, header: str = "Azure-AsyncOperation"
) -> dict[str, Any]:
    url = response.headers[header]
    answer = httpx.get(url, headers=daemon.headers(), timeout=30)
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


def disk(daemon: Daemon) -> bytes:
    return (daemon.cwd / "disk.raw").read_bytes()


def manifest_exists(daemon: Daemon, version: str) -> bool:
    region = daemon.home / "regions" / "westcentralus"
    return any(region.glob(f"replica-*/galleries/{GALLERY}/images/{IMAGE}/versions/{version}/*"))


def test_a_version_is_described_then_its_disk_streams_in(daemon: Daemon) -> None:
    described = describe(daemon, "2.0.0")
    assert described.status_code == 201, described.text
    properties = described.json()["properties"]
    assert properties["provisioningState"] == "Creating"
    assert int(described.headers["Retry-After"]) >= 1
    waiting = operation(daemon, described)
    assert waiting["status"] == "InProgress" and waiting["endTime"] is None
    assert waiting["name"] in described.headers["Azure-AsyncOperation"]
    source = properties["replicationStatus"]["summary"][0]
    assert source["region"] == "westcentralus" and "waiting for its disk" in source["details"]

    uploaded = upload(daemon, "2.0.0", disk(daemon))
    assert uploaded.status_code == 200, uploaded.text
    published = uploaded.json()["properties"]
    assert published["provisioningState"] == "Succeeded"
    assert published["storageProfile"]["sizeInBytes"] == len(disk(daemon))

    done = operation(daemon, described)
    assert done["status"] == "Succeeded" and done["percentComplete"] == 100 and done["endTime"]
    out = daemon.cwd / "vm-2.0.0.img"
    ok(daemon.cwd, "vm", "create", "--image", f"{VERSIONS}/2.0.0", "--output", out)
    assert out.read_bytes() == disk(daemon), "the uploaded disk must read back exact"


def test_a_chunked_upload_without_a_length_is_published(daemon: Daemon) -> None:
    data = disk(daemon)
    assert describe(daemon, "2.0.1").status_code == 201
    pieces = (data[offset : offset + 100_003] for offset in range(0, len(data), 100_003))
    uploaded = upload(daemon, "2.0.1", pieces)
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["properties"]["storageProfile"]["sizeInBytes"] == len(data)


def _raw_upload(daemon: Daemon, version: str, announced: int, sent: bytes) -> None:
    """An upload announcing ``announced`` bytes that sends ``sent`` and hangs up."""
    route = f"{VERSIONS}/{version}/content"
    with raw_put(
        daemon.url, route, daemon.tokens["admin"], sent, head=f"Content-Length: {announced}"
    ) as connection:
        hang_up(connection)


def _wait_for(daemon: Daemon, version: str, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        answer = daemon.get(f"{VERSIONS}/{version}", params={"$expand": "ReplicationStatus"})
        properties: dict[str, Any] = answer.json()["properties"]
        if properties["provisioningState"] == state or time.monotonic() > deadline:
            return properties
        time.sleep(0.05)


def test_a_body_short_of_its_length_commits_nothing_and_can_be_redone(daemon: Daemon) -> None:
    data = disk(daemon)
    described = describe(daemon, "2.1.0")
    _raw_upload(daemon, "2.1.0", len(data), data[: len(data) // 2])
    failed = _wait_for(daemon, "2.1.0", "Failed")
    assert failed["provisioningState"] == "Failed"
    assert failed["storageProfile"] is None
    assert not manifest_exists(daemon, "2.1.0"), "no manifest may make a torn upload readable"
    details = failed["replicationStatus"]["summary"][0]["details"]
    assert "upload" in details, details
    over = operation(daemon, described)
    assert over["status"] == "Failed" and over["error"]["code"] == "ProvisioningFailed"
    assert over["endTime"] is not None

    again = describe(daemon, "2.1.0")
    assert again.status_code == 201, again.text
    assert again.json()["properties"]["provisioningState"] == "Creating"
    assert upload(daemon, "2.1.0", data).status_code == 200
    assert operation(daemon, again)["status"] == "Succeeded"
    assert operation(daemon, described)["status"] == "Failed", "an ended operation keeps its end"


def test_a_client_that_hangs_up_mid_upload_leaves_no_blob(daemon: Daemon) -> None:
    data = disk(daemon)
    assert describe(daemon, "2.1.1").status_code == 201
    _raw_upload(daemon, "2.1.1", len(data) * 4, data)
    failed = _wait_for(daemon, "2.1.1", "Failed")
    assert failed["provisioningState"] == "Failed" and failed["storageProfile"] is None
    assert not manifest_exists(daemon, "2.1.1")
    assert daemon.get("/livez").status_code == 200


def test_an_upload_that_stalls_fails_after_the_idle_timeout_and_frees_the_version(daemon: Daemon) -> None:
    data = disk(daemon)
    assert describe(daemon, "2.1.2").status_code == 201
    url, process = start(daemon.cwd, daemon.home, "--upload-idle-timeout", "0.5")
    try:
        route, token = f"{VERSIONS}/2.1.2/content", daemon.tokens["admin"]
        # 100,000 bytes of the length, then nothing more, the socket open.
        with raw_put(url, route, token, data[:100_000], head=f"Content-Length: {len(data)}") as connection:
            started = time.monotonic()
            answer = response(connection)
            waited = time.monotonic() - started
        assert answer.startswith("HTTP/1.1 400"), answer
        assert "stalled: no byte of it arrived for 0.5 s" in answer and "--upload-idle-timeout" in answer
        assert waited < 10, f"answered after {waited:.1f} s"
        failed = _wait_for(daemon, "2.1.2", "Failed")
        assert failed["provisioningState"] == "Failed" and failed["storageProfile"] is None
        assert not manifest_exists(daemon, "2.1.2")
    finally:
        code, err = stop(process)
        assert code == 0, err
    assert describe(daemon, "2.1.2").status_code == 201, "described again once the stalled upload failed"
    assert upload(daemon, "2.1.2", data).status_code == 200


@pytest.mark.parametrize("coding", ["gzip", "br", "gzip, identity"])
def test_a_disk_in_a_content_coding_is_refused_not_stored_as_its_compressed_bytes(
    daemon: Daemon, coding: str
) -> None:
    assert describe(daemon, "2.1.3").status_code in (200, 201)
    refused = httpx.put(
        f"{daemon.url}{VERSIONS}/2.1.3/content",
        content=gzip.compress(disk(daemon)),
        headers={**daemon.headers(), "Content-Encoding": coding},
        timeout=60,
    )
    assert refused.status_code == 415, refused.text
    error = refused.json()["error"]
    assert error["code"] == "UnsupportedMediaType" and "send the disk's own bytes" in error["message"]
    waiting = _wait_for(daemon, "2.1.3", "Creating")
    assert waiting["provisioningState"] == "Creating" and waiting["storageProfile"] is None, "nothing stored"


def test_a_disk_in_a_transfer_coding_besides_chunked_is_refused(daemon: Daemon) -> None:
    assert describe(daemon, "2.1.4").status_code == 201
    body = gzip.compress(disk(daemon))
    framed = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    route, token = f"{VERSIONS}/2.1.4/content", daemon.tokens["admin"]
    with raw_put(daemon.url, route, token, framed, head="Transfer-Encoding: gzip, chunked") as connection:
        answer = response(connection)
    assert answer.startswith("HTTP/1.1 415"), answer
    assert "Transfer-Encoding 'gzip, chunked' is not taken" in answer
    waiting = _wait_for(daemon, "2.1.4", "Creating")
    assert waiting["provisioningState"] == "Creating" and waiting["storageProfile"] is None, "nothing stored"


def test_an_upload_is_checked_against_its_content_digest(daemon: Daemon) -> None:
    data = disk(daemon)
    good = f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode()}:"
    route = f"{daemon.url}{VERSIONS}/{{}}/content"
    assert describe(daemon, "2.1.5").status_code == 201
    ok_answer = httpx.put(
        route.format("2.1.5"), content=data, headers={**daemon.headers(), "Content-Digest": good}, timeout=60
    )
    assert ok_answer.status_code == 200, ok_answer.text

    assert describe(daemon, "2.1.6").status_code == 201
    unknown = httpx.put(
        route.format("2.1.6"),
        content=data,
        headers={**daemon.headers(), "Content-Digest": "md5=:AAAAAAAAAAAAAAAAAAAAAA==:"},
        timeout=60,
    )
    assert unknown.status_code == 400 and "none of which blobrep checks" in unknown.text
    assert _wait_for(daemon, "2.1.6", "Creating")["storageProfile"] is None, "still waiting, nothing read"

    damaged = data[:1000] + bytes([data[1000] ^ 1]) + data[1001:]
    refused = httpx.put(
        route.format("2.1.6"),
        content=damaged,
        headers={**daemon.headers(), "Content-Digest": good},
        timeout=60,
    )
    assert refused.status_code == 400, refused.text
    assert "does not match its Content-Digest" in refused.json()["error"]["message"]
    failed = _wait_for(daemon, "2.1.6", "Failed")
    assert failed["provisioningState"] == "Failed" and failed["storageProfile"] is None
    assert not manifest_exists(daemon, "2.1.6"), "a body that does not match is never committed"


def test_uploads_are_refused_where_no_disk_is_awaited(daemon: Daemon) -> None:
    published = upload(daemon, "1.0.0", b"x" * 10)
    assert published.status_code == 409
    assert "not waiting for its disk" in published.json()["error"]["message"]
    missing = upload(daemon, "9.9.9", b"x")
    assert missing.status_code == 404
    assert describe(daemon, "2.2.0").status_code == 201
    denied = upload(daemon, "2.2.0", b"x", principal="reader")
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "AuthorizationFailed"
    assert describe(daemon, "2.2.1", principal="reader").status_code == 403
    unauthenticated = httpx.put(f"{daemon.url}{VERSIONS}/2.2.0/content", content=b"x", timeout=30)
    assert unauthenticated.status_code == 401


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"properties": {"publishingProfile": {"replicaCount": "2"}}}, "replicaCount"),
        ({"properties": {"publishingProfile": {"targetRegions": [{"name": "nowhere"}]}}}, "nowhere"),
        ({"properties": {"publishingProfile": {"targetRegions": [{"nam": "eastus2"}]}}}, "nam"),
        ({"properties": {"storageProfile": {"osDiskImage": {"source": {"uri": "/etc/passwd"}}}}}, "upload"),
        ({"properties": {"publishingProfile": {"excludeFromLatest": 1}}}, "true or false"),
        ({"properties": {"safetyProfile": {"blockDeletion": True}}}, "blockDeletion"),
    ],
)
def test_bad_version_bodies_are_refused_naming_the_field(
    daemon: Daemon, body: dict[str, Any], words: str
) -> None:
    answer = describe(daemon, "3.0.0", body)
    assert answer.status_code in (400, 404), answer.text
    assert words in answer.json()["error"]["message"]
    assert daemon.get(f"{VERSIONS}/3.0.0").status_code == 404, "a refused body records nothing"


def test_a_get_body_can_be_put_back_unchanged(daemon: Daemon) -> None:
    shown = daemon.get(f"{VERSIONS}/1.0.0", params={"$expand": "ReplicationStatus"}).json()
    again = describe(daemon, "1.0.0", shown)
    assert again.status_code == 200, again.text
    assert again.json()["properties"]["publishingProfile"] == shown["properties"]["publishingProfile"]
    assert operation(daemon, again)["status"] == "Succeeded"


def test_patch_answers_202_and_its_operation_ends_when_the_region_completes(daemon: Daemon) -> None:
    target = {
        "properties": {
            "publishingProfile": {
                "targetRegions": [{"name": "westcentralus"}, {"name": "eastus2", "regionalReplicaCount": 2}]
            }
        }
    }
    patched = httpx.patch(f"{daemon.url}{VERSIONS}/1.0.1", json=target, headers=daemon.headers(), timeout=30)
    assert patched.status_code == 202, patched.text
    assert int(patched.headers["Retry-After"]) >= 1
    regions = {t["name"]: t for t in patched.json()["properties"]["publishingProfile"]["targetRegions"]}
    assert regions["eastus2"]["regionalReplicaCount"] == 2
    ok(daemon.cwd, "replicate", "-r", GALLERY, "-i", IMAGE, "-e", "1.0.1")
    deadline = time.monotonic() + 30
    while (
        result := httpx.get(patched.headers["Location"], headers=daemon.headers(), timeout=30)
    ).status_code == 202:
        assert time.monotonic() < deadline, result.text
        time.sleep(0.1)
    assert result.status_code == 200, result.text
    summary = {s["region"]: s for s in result.json()["properties"]["replicationStatus"]["summary"]}
    assert summary["eastus2"]["state"] == "Completed"
    assert operation(daemon, patched)["status"] == "Succeeded"


def test_delete_answers_202_then_the_result_is_204(daemon: Daemon) -> None:
    assert describe(daemon, "4.0.0").status_code == 201
    assert upload(daemon, "4.0.0", disk(daemon)).status_code == 200
    deleted = httpx.delete(f"{daemon.url}{VERSIONS}/4.0.0", headers=daemon.headers(), timeout=30)
    assert deleted.status_code == 202, deleted.text
    result = httpx.get(deleted.headers["Location"], headers=daemon.headers(), timeout=30)
    assert result.status_code == 204
    assert operation(daemon, deleted)["status"] == "Succeeded"
    assert daemon.get(f"{VERSIONS}/4.0.0").status_code == 404
    denied = httpx.delete(f"{daemon.url}{VERSIONS}/1.0.0", headers=daemon.headers("reader"), timeout=30)
    assert denied.status_code == 403


def test_patch_and_delete_refuse_latest_and_change_no_version(daemon: Daemon) -> None:
    before = daemon.get(f"{VERSIONS}").json()["value"]
    latest = daemon.get(f"{VERSIONS}/latest").json()["name"]
    body = {"properties": {"publishingProfile": {"endOfLifeDate": "2030-01-01"}}}
    for method, sent in (("PATCH", body), ("DELETE", None)):
        for spelled in ("latest", "Latest"):
            refused = httpx.request(
                method, f"{daemon.url}{VERSIONS}/{spelled}", json=sent, headers=daemon.headers(), timeout=30
            )
            assert refused.status_code == 400, refused.text
            message = refused.json()["error"]["message"]
            assert f"{method} takes the version's own number, not 'latest'" in message
    assert daemon.get(f"{VERSIONS}").json()["value"] == before, "no version was changed or deleted"
    assert daemon.get(f"{VERSIONS}/latest").json()["name"] == latest


def test_an_if_match_that_cannot_hold_is_412_and_changes_nothing(daemon: Daemon) -> None:
    before = daemon.get(f"{VERSIONS}/1.0.0").json()
    body = {"properties": {"publishingProfile": {"endOfLifeDate": "2031-01-01"}}}
    for method, version, tag in (
        ("PATCH", "1.0.0", '"nope"'),
        ("PUT", "1.0.0", '"nope"'),
        ("PUT", "9.8.7", '"nope"'),
        ("PUT", "9.8.7", "*"),
        ("DELETE", "1.0.0", 'W/"x"'),
    ):
        answer = httpx.request(
            method,
            f"{daemon.url}{VERSIONS}/{version}",
            json=None if method == "DELETE" else body,
            headers={**daemon.headers(), "If-Match": tag},
            timeout=30,
        )
        assert answer.status_code == 412, (method, version, tag, answer.text)
        assert answer.json()["error"]["code"] == "PreconditionFailed"
    assert daemon.get(f"{VERSIONS}/1.0.0").json() == before
    assert daemon.get(f"{VERSIONS}/9.8.7").status_code == 404
    patched = httpx.patch(
        f"{daemon.url}{VERSIONS}/1.0.0",
        json={"properties": {}},
        headers={**daemon.headers(), "If-Match": "*"},
        timeout=30,
    )
    assert patched.status_code == 202, patched.text


def test_operations_are_shown_only_to_who_may_read_the_version(daemon: Daemon) -> None:
    described = describe(daemon, "5.0.0")
    url = described.headers["Azure-AsyncOperation"]
    assert httpx.get(url, headers=daemon.headers("reader"), timeout=30).status_code == 200
    hidden = httpx.get(url, headers=daemon.headers("nobody"), timeout=30)
    unknown = daemon.get("/operations/00000000-0000-0000-0000-000000000000", "nobody")
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json()["error"]["message"].split("'")[0] == unknown.json()["error"]["message"].split("'")[0]
    assert httpx.get(url, timeout=30).status_code == 401


def test_operations_live_in_the_catalog_across_daemons(daemon: Daemon, tmp_path: Path) -> None:
    described = describe(daemon, "6.0.0")
    assert upload(daemon, "6.0.0", disk(daemon)).status_code == 200
    path = urlsplit(described.headers["Azure-AsyncOperation"]).path
    url, process = start(daemon.cwd, daemon.home)
    try:
        answer = httpx.get(url + path, headers=daemon.headers(), timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "Succeeded"
    finally:
        code, err = stop(process)
        assert code == 0, err
    assert (
        json.loads(ok(daemon.cwd, "sig", "image-version", "show", "-r", GALLERY, "-i", IMAGE, "-e", "6.0.0"))[
            "provisioningState"
        ]
        == "Succeeded"
    )


def test_a_version_waiting_for_its_disk_survives_a_restart(daemon: Daemon) -> None:
    assert describe(daemon, "7.0.0").status_code == 201
    _, process = start(daemon.cwd, daemon.home)  # opening the home runs recovery
    code, err = stop(process)
    assert code == 0, err
    shown = daemon.get(f"{VERSIONS}/7.0.0").json()["properties"]
    assert shown["provisioningState"] == "Creating", "recovery must not fail a version waiting for its disk"
    assert upload(daemon, "7.0.0", b"".join(SyntheticImage(1 << 20, seed=3).blocks())).status_code == 200


def test_the_disk_route_names_every_method_it_takes(daemon: Daemon) -> None:
    answer = daemon.request("DELETE", f"{VERSIONS}/1.0.0/content")
    assert answer.status_code == 405
    assert set(answer.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "PUT"}


def test_create_only_never_changes_a_version_that_exists(daemon: Daemon) -> None:
    before = daemon.get(f"{VERSIONS}/1.0.0").json()
    body = {"properties": {"publishingProfile": {"replicaCount": 3}}}
    refused = httpx.put(
        f"{daemon.url}{VERSIONS}/1.0.0",
        json=body,
        headers={**daemon.headers(), "If-None-Match": "*"},
        timeout=30,
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "ResourceAlreadyExists"
    assert daemon.get(f"{VERSIONS}/1.0.0").json() == before, "a refused create changes nothing"
    created = httpx.put(
        f"{daemon.url}{VERSIONS}/8.0.0",
        json=body,
        headers={**daemon.headers(), "If-None-Match": "*"},
        timeout=30,
    )
    assert created.status_code == 201, created.text


def test_a_version_still_waiting_for_its_disk_may_be_described_again(daemon: Daemon) -> None:
    assert describe(daemon, "8.1.0").status_code == 201
    body = {"properties": {"publishingProfile": {"replicaCount": 2}}}
    again = httpx.put(
        f"{daemon.url}{VERSIONS}/8.1.0",
        json=body,
        headers={**daemon.headers(), "If-None-Match": "*"},
        timeout=30,
    )
    assert again.status_code == 201, again.text
    assert again.json()["properties"]["publishingProfile"]["replicaCount"] == 2
    assert upload(daemon, "8.1.0", disk(daemon)).status_code == 200
