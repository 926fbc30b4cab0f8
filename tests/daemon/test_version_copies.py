"""Versions created from another version over HTTP: ``PUT`` with ``storageProfile.source.id``,
its operation, the refusals, and the CLI's ``--image-version`` through ``--endpoint``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from blobrep.daemon.version_bodies import version_options, version_source
from blobrep.errors import InvalidParameterError
from tests.cli.helpers import blobrep, files_under
from tests.daemon.conftest import GALLERY, IMAGE, Daemon, ok

SOURCE = f"/galleries/{GALLERY}/images/{IMAGE}/versions/1.0.0"
OTHER = "other"


def put(daemon: Daemon, route: str, body: dict[str, Any], principal: str = "admin") -> httpx.Response:
    return httpx.put(daemon.url + route, json=body, headers=daemon.headers(principal), timeout=30)


def copy_of(source: str, **properties: Any) -> dict[str, Any]:
    """A version body whose disk is ``source``'s."""
    return {"properties": {"storageProfile": {"source": {"id": source}}, **properties}}


def version(gallery: str, number: str) -> str:
    return f"/galleries/{gallery}/images/{IMAGE}/versions/{number}"


def settled(daemon: Daemon, answer: httpx.Response) -> dict[str, Any]:
    """The operation ``answer`` names, once it is over."""
    deadline = time.monotonic() + 60
    while True:
        found = httpx.get(answer.headers["Azure-AsyncOperation"], headers=daemon.headers(), timeout=30)
        document: dict[str, Any] = found.json()
        if document["status"] != "InProgress":
            return document
        assert time.monotonic() < deadline, document
        time.sleep(0.1)


def disk(daemon: Daemon) -> bytes:
    return (daemon.cwd / "disk.raw").read_bytes()


def replica(daemon: Daemon, region: str = "westcentralus") -> Path:
    return daemon.home / "regions" / region / "replica-1"


@pytest.fixture(scope="module")
def other(daemon: Daemon) -> str:
    """A second gallery with a definition like ``img``, and ``builder``, Contributor there only."""
    assert put(daemon, f"/galleries/{OTHER}", {"location": "westcentralus"}).status_code == 201
    identifier = {"publisher": "p", "offer": "o", "sku": "other"}
    body = {"properties": {"identifier": identifier, "osType": "Linux"}}
    assert put(daemon, f"/galleries/{OTHER}/images/{IMAGE}", body).status_code == 201
    ok(daemon.cwd, "principal", "create", "--name", "builder", "--type", "user")
    ok(daemon.cwd, "role", "assignment", "create", "--assignee", "builder", "--role", "Contributor",
       "--scope", f"/galleries/{OTHER}")  # fmt: skip
    daemon.tokens["builder"] = json.loads(ok(daemon.cwd, "token", "create", "--principal", "builder"))[
        "token"
    ]
    return OTHER


def test_a_copy_in_the_same_gallery_answers_201_and_writes_no_chunk(daemon: Daemon) -> None:
    packs = files_under(replica(daemon) / "galleries" / GALLERY / "packs")
    created = put(daemon, version(GALLERY, "3.0.0"), copy_of(SOURCE))
    assert created.status_code == 201, created.text
    properties = created.json()["properties"]
    assert properties["storageProfile"]["source"] == {"id": SOURCE}
    assert settled(daemon, created)["status"] == "Succeeded"
    shown = daemon.get(version(GALLERY, "3.0.0")).json()["properties"]
    assert shown["provisioningState"] == "Succeeded" and shown["storageProfile"]["source"] == {"id": SOURCE}
    assert files_under(replica(daemon) / "galleries" / GALLERY / "packs") == packs
    read = daemon.get(version(GALLERY, "3.0.0") + "/content")
    assert read.status_code == 200 and read.content == disk(daemon)


def test_a_copy_from_another_gallery_is_replicated_and_reads_back_exact(daemon: Daemon, other: str) -> None:
    source_files = files_under(replica(daemon) / "galleries" / GALLERY)
    targets = {"publishingProfile": {"targetRegions": [{"name": "westcentralus"}, {"name": "eastus2"}]}}
    created = put(daemon, version(other, "1.0.0"), copy_of(SOURCE, **targets))
    assert created.status_code == 201, created.text
    done = settled(daemon, created)
    assert done["status"] == "Succeeded", done
    for region in ("westcentralus", "eastus2"):
        read = daemon.get(version(other, "1.0.0") + "/content", params={"location": region})
        assert read.status_code == 200 and read.content == disk(daemon), region
    assert files_under(replica(daemon) / "galleries" / GALLERY) == source_files

    shown = daemon.get(version(other, "1.0.0")).json()
    assert put(daemon, version(other, "1.0.0"), shown).status_code == 200, "a GET body can be PUT back"
    moved = put(daemon, version(other, "1.0.0"), copy_of(version(GALLERY, "1.0.1")))
    assert moved.status_code == 400 and "cannot change" in moved.json()["error"]["message"]


def test_a_copy_the_caller_may_not_read_is_refused_alike_whether_or_not_it_exists(
    daemon: Daemon, other: str
) -> None:
    refused = put(daemon, version(other, "2.0.0"), copy_of(SOURCE), "builder")
    missing = put(daemon, version(other, "2.0.0"), copy_of(SOURCE.replace("1.0.0", "8.8.8")), "builder")
    assert refused.status_code == missing.status_code == 403
    assert refused.json()["error"]["message"].replace("1.0.0", "8.8.8") == missing.json()["error"]["message"]
    reader = put(daemon, version(GALLERY, "4.0.0"), copy_of(SOURCE), "reader")
    assert reader.status_code == 403, "Reader on the source is not Contributor on the target"
    for gone in ((other, "2.0.0"), (GALLERY, "4.0.0")):
        assert daemon.get(version(*gone)).status_code == 404, "nothing is recorded"


@pytest.mark.parametrize(
    ("body", "status", "said"),
    [
        (copy_of(f"/galleries/{GALLERY}/images/{IMAGE}"), 400, "names an image definition"),
        (copy_of(SOURCE, publishingProfile={"targetRegions": [{"name": "eastus2"}]}), 409, "Completed in"),
        ({"properties": {"storageProfile": {"source": "1.0.0"}}}, 400, "'source'"),
        ({"properties": {"storageProfile": {"source": {"uri": SOURCE}}}}, 400, "uri"),
    ],
)
def test_a_copy_that_cannot_be_made_is_refused_before_anything_is_recorded(
    daemon: Daemon, other: str, body: dict[str, Any], status: int, said: str
) -> None:
    route = version(other, "5.0.0")
    answer = httpx.put(
        daemon.url + route, json={**body, "location": "eastus2"}, headers=daemon.headers(), timeout=30
    )
    assert answer.status_code == status, answer.text
    assert said in answer.json()["error"]["message"]
    assert daemon.get(route).status_code == 404


def test_a_corrupt_source_fails_the_operation_and_the_same_put_redoes_it(daemon: Daemon) -> None:
    """Into a gallery of its own: one that holds the disk's objects already reads none of them."""
    other = "third"
    assert put(daemon, f"/galleries/{other}", {"location": "westcentralus"}).status_code == 201
    identifier = {"publisher": "p", "offer": "o", "sku": other}
    body = {"properties": {"identifier": identifier, "osType": "Linux"}}
    assert put(daemon, f"/galleries/{other}/images/{IMAGE}", body).status_code == 201
    (pack,) = [
        path for path in (replica(daemon) / "galleries" / GALLERY / "packs").rglob("*") if path.is_file()
    ]
    good = pack.read_bytes()
    pack.write_bytes(good[:-1] + bytes([good[-1] ^ 0xFF]))
    try:
        created = put(daemon, version(other, "6.0.0"), copy_of(SOURCE))
        assert created.status_code == 201, created.text
        failed = settled(daemon, created)
        assert failed["status"] == "Failed" and f"pack {pack.name}" in failed["error"]["message"]
        shown = daemon.get(version(other, "6.0.0")).json()["properties"]
        assert shown["provisioningState"] == "Failed" and "sizeInBytes" not in shown["storageProfile"]
    finally:
        pack.write_bytes(good)
    again = put(daemon, version(other, "6.0.0"), copy_of(SOURCE))
    assert again.status_code == 201, again.text
    assert settled(daemon, again)["status"] == "Succeeded"
    read = daemon.get(version(other, "6.0.0") + "/content")
    assert read.content == disk(daemon)


def test_the_cli_copies_through_the_daemon_as_it_does_on_a_home(daemon: Daemon, other: str) -> None:
    remote = ("--endpoint", daemon.url, "--token", daemon.tokens["admin"])
    command = ("sig", "image-version", "create", "-r", other, "-i", IMAGE, "-e", "7.0.0")
    result = blobrep(
        *remote, *command, "--image-version", SOURCE, "--target-regions", "westcentralus", "eastus2",
        cwd=daemon.cwd,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert created["storageProfile"]["source"] == {"id": SOURCE}
    assert [s["state"] for s in created["replicationStatus"]["summary"]] == ["Completed", "Completed"]
    output = daemon.cwd / "vm-7.0.0.img"
    ok(
        daemon.cwd,
        *remote,
        "vm",
        "create",
        "--image",
        version(other, "7.0.0"),
        "-l",
        "eastus2",
        "--output",
        output,
    )
    assert output.read_bytes() == disk(daemon)

    wrong = blobrep(*remote, *command, "--image-version", f"/galleries/{GALLERY}", cwd=daemon.cwd)
    assert wrong.returncode == 2 and "names a gallery" in wrong.stderr
    builder = ("--endpoint", daemon.url, "--token", daemon.tokens["builder"])
    denied = blobrep(*builder, *command[:-1], "7.0.1", "--image-version", SOURCE, cwd=daemon.cwd)
    assert denied.returncode == 1 and "builder" in denied.stderr and len(denied.stderr.splitlines()) == 1


def test_a_body_names_one_source_of_a_disk() -> None:
    content = f"{version(GALLERY, '9.0.0')}/content"
    body = copy_of(SOURCE)
    version_options(body, content_path=content, create=True)
    assert version_source(body) == SOURCE
    assert version_source({"properties": {}}) is None
    body["properties"]["storageProfile"]["osDiskImage"] = {"source": {"uri": content}}
    with pytest.raises(InvalidParameterError, match="both a version to copy"):
        version_options(body, content_path=content, create=True)
