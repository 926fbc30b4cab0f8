"""A daemon killed with SIGKILL while a version's data disk streams in: on restart the create is
Failed as interrupted with no disk of it recorded (the OS disk uploaded before included), the
store holds nothing a manifest names that is torn, and describing the version again and
uploading its disks redoes it, every disk read back exactly."""

from __future__ import annotations

import contextlib
import json
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from blobrep.daemon.server import UNWIND_SECONDS
from blobrep.service import SyntheticImage
from tests.daemon.conftest import GALLERY, IMAGE, ok, start, stop
from tests.daemon.raw_http import raw_put
from tests.daemon.test_reconcile import MIB, VERSIONS, Served, _home, _serve, _summary

TARGETS = [{"name": "westcentralus"}, {"name": "eastus2"}]


def _describe(daemon: Served, number: str) -> httpx.Response:
    storage = {"dataDiskImages": [{"lun": 0}]}
    body = {"properties": {"publishingProfile": {"targetRegions": TARGETS}, "storageProfile": storage}}
    headers = {"Authorization": f"Bearer {daemon.token}"}
    return httpx.put(f"{daemon.url}{VERSIONS}/{number}", json=body, headers=headers, timeout=10)


def _route(number: str, lun: int | None) -> str:
    return f"{VERSIONS}/{number}/content" if lun is None else f"{VERSIONS}/{number}/dataDisks/{lun}/content"


def _upload(daemon: Served, number: str, lun: int | None, data: bytes) -> httpx.Response:
    headers = {"Authorization": f"Bearer {daemon.token}"}
    return httpx.put(daemon.url + _route(number, lun), content=data, headers=headers, timeout=60)


def _source(document: dict[str, Any]) -> tuple[str, str, str]:
    """The provisioning state, and the source region's state and details."""
    entry = _summary(document)["westcentralus"]
    return document["properties"]["provisioningState"], entry["state"], entry.get("details") or ""


@pytest.mark.slow
def test_a_daemon_killed_mid_data_disk_upload_fails_the_create_and_describing_it_again_redoes_it(
    tmp_path: Path,
) -> None:
    home, disk, token = _home(tmp_path, 4 * MIB)
    os_disk = disk.read_bytes()
    data_disk = b"".join(SyntheticImage(6 * MIB, seed=77).blocks())
    daemon = _serve(tmp_path, home, token)
    try:
        assert _describe(daemon, "1.0.0").status_code == 201
        assert _upload(daemon, "1.0.0", None, os_disk).status_code == 200
        assert "osDiskImage" in daemon.version("1.0.0")["properties"]["storageProfile"]
        half, length = data_disk[: len(data_disk) // 2], f"Content-Length: {len(data_disk)}"
        with raw_put(daemon.url, _route("1.0.0", 0), token, half, head=length):
            deadline = time.monotonic() + 30
            while "publishing the uploaded data disk at LUN 0" not in _source(daemon.version("1.0.0"))[2]:
                assert time.monotonic() < deadline, _source(daemon.version("1.0.0"))
                time.sleep(0.02)
            daemon.process.send_signal(signal.SIGKILL)
            daemon.process.wait()
    finally:
        if daemon.process.poll() is None:
            daemon.process.kill()

    daemon = _serve(tmp_path, home, token)
    try:
        state, region, details = _source(daemon.version("1.0.0"))
        assert (state, region) == ("Failed", "Failed") and "interrupted" in details, details
        storage = daemon.version("1.0.0")["properties"]["storageProfile"]
        assert "osDiskImage" not in storage, "no disk of an interrupted create stays recorded"
        refused = _upload(daemon, "1.0.0", 0, data_disk)
        assert (
            refused.status_code == 409 and "describe the version again" in refused.json()["error"]["message"]
        )

        assert _describe(daemon, "1.0.0").status_code == 201
        assert _upload(daemon, "1.0.0", 0, data_disk).status_code == 200
        finished = _upload(daemon, "1.0.0", None, os_disk)
        assert finished.status_code == 200, finished.text
        assert finished.json()["properties"]["provisioningState"] == "Succeeded"
        replicated = _summary(daemon.wait_for("1.0.0", "Completed", "Failed"))
        assert {region: entry["state"] for region, entry in replicated.items()} == {
            "westcentralus": "Completed",
            "eastus2": "Completed",
        }
        headers = {"Authorization": f"Bearer {token}"}
        for lun, expected in ((None, os_disk), (0, data_disk)):
            read = httpx.get(
                daemon.url + _route("1.0.0", lun), params={"location": "eastus2"}, headers=headers, timeout=60
            )
            assert read.status_code == 200 and read.content == expected, (lun, read.status_code)
    finally:
        code, _ = stop(daemon.process)
    assert code == 0, daemon.log.read_text()
    assert json.loads(ok(tmp_path, "-o", "json", "fsck"))["problems"] == [], "fsck finds nothing torn"


def test_a_daemon_stopped_mid_upload_fails_the_version_itself_and_exits_cleanly(tmp_path: Path) -> None:
    home, disk, token = _home(tmp_path, 4 * MIB)
    data = disk.read_bytes()
    url, process = start(tmp_path, home, "--shutdown-grace", "1", "--reconcile-interval", "0.05")
    headers = {"Authorization": f"Bearer {token}"}
    body = {"properties": {"publishingProfile": {"targetRegions": [{"name": "westcentralus"}]}}}
    assert httpx.put(f"{url}{VERSIONS}/1.0.0", json=body, headers=headers, timeout=10).status_code == 201
    half = data[: len(data) // 2]  # then it stalls
    with raw_put(url, _route("1.0.0", None), token, half, head=f"Content-Length: {len(data)}") as connection:
        deadline = time.monotonic() + 30
        while True:
            shown = httpx.get(
                f"{url}{VERSIONS}/1.0.0", params={"$expand": "ReplicationStatus"}, headers=headers, timeout=10
            ).json()
            if "publishing the uploaded OS disk" in _source(shown)[2]:
                break
            assert time.monotonic() < deadline, _source(shown)
            time.sleep(0.02)
        stopped = time.monotonic()
        code, log = stop(process)
        took = time.monotonic() - stopped
        answer = b""
        with contextlib.suppress(OSError):
            while piece := connection.recv(65536):
                answer += piece
    assert code == 0, log
    assert took < 1 + UNWIND_SECONDS + 5, f"stopped after {took:.1f} s"
    assert answer.startswith(b"HTTP/1.1 503 "), answer
    assert b"retry-after: 5" in answer.lower()
    assert b"the daemon is stopping and cut this request short" in answer
    assert "InternalError" not in log and "is closed" not in log, log
    # Read from the catalog as it was left, without opening the service (which would recover).
    document = json.loads(
        ok(tmp_path, "sig", "image-version", "show", "-r", GALLERY, "-i", IMAGE, "-e", "1.0.0", "--expand",
           "ReplicationStatus")
    )  # fmt: skip
    (status,) = document["replicationStatus"]["summary"]
    assert document["provisioningState"] == "Failed", document
    assert (status["state"], status["details"]) == ("Failed", "publish failed: publishing was interrupted")
