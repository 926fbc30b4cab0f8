"""Versions with data disks over HTTP: shown in ARM's shape, described with their LUNs, each
disk uploaded to its own route, Completed only with the last, replicated by the daemon, read
back disk by disk exactly as the OS disk is, and deployed whole by ``vm create --endpoint``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from blobrep.service import SyntheticImage
from tests.cli.helpers import assert_one_line_error, blobrep
from tests.daemon.conftest import DEFINITION, GALLERY, IMAGE, Daemon, ok
from tests.daemon.raw_http import hang_up, raw_put

VERSIONS = f"/galleries/{GALLERY}/images/{IMAGE}/versions"
TARGETS = [{"name": "westcentralus"}, {"name": "eastus2"}]


def synthetic(path: Path, size: int, seed: int) -> bytes:
    with open(path, "wb") as out:  # each block is written before the next reuses its buffer
        for block in SyntheticImage(size, seed=seed).blocks():
            out.write(block)
    return path.read_bytes()


def describe(daemon: Daemon, version: str, luns: list[int], **extra: Any) -> httpx.Response:
    storage = {"dataDiskImages": [{"lun": lun} for lun in luns], **extra}
    body = {"properties": {"publishingProfile": {"targetRegions": TARGETS}, "storageProfile": storage}}
    return httpx.put(f"{daemon.url}{VERSIONS}/{version}", json=body, headers=daemon.headers(), timeout=30)


def disk_route(version: str, lun: int | None) -> str:
    return f"{VERSIONS}/{version}/content" if lun is None else f"{VERSIONS}/{version}/dataDisks/{lun}/content"


def upload(daemon: Daemon, version: str, lun: int | None, data: bytes) -> httpx.Response:
    return httpx.put(
        daemon.url + disk_route(version, lun), content=data, headers=daemon.headers(), timeout=60
    )


def read(
    daemon: Daemon, version: str, lun: int | None, headers: dict[str, str] | None = None, method: str = "GET"
) -> httpx.Response:
    return httpx.request(
        method,
        daemon.url + disk_route(version, lun),
        params={"location": "eastus2"},
        headers={**daemon.headers(), **(headers or {})},
        timeout=60,
    )


def source_details(daemon: Daemon, version: str) -> tuple[str, str, str]:
    """The version's provisioning state, and its source region's state and details."""
    properties = daemon.get(f"{VERSIONS}/{version}", params={"$expand": "ReplicationStatus"}).json()[
        "properties"
    ]
    source = properties["replicationStatus"]["summary"][0]
    assert source["region"] == "westcentralus"
    return properties["provisioningState"], source["state"], source["details"]


def wait_for_operation(daemon: Daemon, described: httpx.Response) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        answer = httpx.get(described.headers["Azure-AsyncOperation"], headers=daemon.headers(), timeout=30)
        document: dict[str, Any] = answer.json()
        if document["status"] != "InProgress" or time.monotonic() > deadline:
            return document
        time.sleep(0.1)


@pytest.fixture(scope="module")
def with_disks(daemon: Daemon) -> Path:
    """Version 2.0.0 of the daemon's home, with a data disk at LUN 2; its data disk's file."""
    data = daemon.cwd / "data2.raw"
    synthetic(data, 2 * 1024 * 1024, seed=5)
    ok(daemon.cwd, "sig", "image-version", "create", *DEFINITION, "-e", "2.0.0",
       "--source", daemon.cwd / "disk.raw", "--data-disk", f"2={data}")  # fmt: skip
    return data


@pytest.fixture(scope="module")
def disks(daemon: Daemon) -> dict[int | None, bytes]:
    """The bytes of an OS disk and of two data disks (LUN 0 and 1, the second sharing half of
    its bytes with the first)."""
    lun0 = synthetic(daemon.cwd / "lun0.raw", 3 * 1024 * 1024, seed=40)
    lun1 = lun0[: len(lun0) // 2] + synthetic(daemon.cwd / "lun1-tail.raw", 1024 * 1024 + 17, seed=41)
    return {None: (daemon.cwd / "disk.raw").read_bytes(), 0: lun0, 1: lun1}


def test_the_disks_are_shown_in_arm_shape(daemon: Daemon, with_disks: Path) -> None:
    shown = daemon.get(f"{VERSIONS}/2.0.0").json()["properties"]["storageProfile"]
    size = (daemon.cwd / "disk.raw").stat().st_size
    assert shown["sizeInBytes"] == shown["osDiskImage"]["sizeInBytes"] == size
    (disk,) = shown["dataDiskImages"]
    assert (disk["lun"], disk["sizeInBytes"]) == (2, with_disks.stat().st_size)
    assert disk["digest"] and disk["storedBytes"] > 0 and disk["chunks"] > 0
    plain = daemon.get(f"{VERSIONS}/1.0.0").json()["properties"]["storageProfile"]
    assert "dataDiskImages" not in plain, "a version without data disks shows none"


def test_a_patch_or_put_may_send_the_shown_disks_back_but_not_change_them(
    daemon: Daemon, with_disks: Path
) -> None:
    shown = daemon.get(f"{VERSIONS}/2.0.0").json()
    url, headers = f"{daemon.url}{VERSIONS}/2.0.0", daemon.headers()
    patched = httpx.patch(url, json={"properties": shown["properties"]}, headers=headers, timeout=30)
    assert patched.status_code == 202, patched.text
    put_back = httpx.put(url, json=shown, headers=headers, timeout=30)
    assert put_back.status_code == 200, put_back.text
    again = daemon.get(f"{VERSIONS}/2.0.0").json()["properties"]["storageProfile"]
    assert again["dataDiskImages"] == shown["properties"]["storageProfile"]["dataDiskImages"]
    changed = {"properties": {"storageProfile": {"dataDiskImages": [{"lun": 2}, {"lun": 3}]}}}
    refused = httpx.patch(url, json=changed, headers=headers, timeout=30)
    assert refused.status_code == 400, refused.text
    assert "cannot change" in refused.json()["error"]["message"]


def test_a_version_completes_only_once_its_last_disk_arrives(
    daemon: Daemon, disks: dict[int | None, bytes]
) -> None:
    described = describe(daemon, "3.0.0", [1, 0])
    assert described.status_code == 201, described.text
    luns = [disk["lun"] for disk in described.json()["properties"]["storageProfile"]["dataDiskImages"]]
    assert luns == [0, 1]
    assert source_details(daemon, "3.0.0") == (
        "Creating",
        "Unknown",
        "waiting for its disks to be uploaded: the OS disk, LUN 0, LUN 1",
    )
    for lun, still in ((None, "LUN 0, LUN 1"), (1, "LUN 0")):
        answer = upload(daemon, "3.0.0", lun, disks[lun])
        assert answer.status_code == 200, answer.text
        assert source_details(daemon, "3.0.0") == (
            "Creating",
            "Unknown",
            f"waiting for its disks to be uploaded: {still}",
        )
        unreadable = read(daemon, "3.0.0", None)
        assert unreadable.status_code == 409, "nothing is readable before every disk is in"
    lun1_new = int(answer.headers["x-blobrep-new-chunks"])
    last = upload(daemon, "3.0.0", 0, disks[0])
    assert last.status_code == 200, last.text
    assert last.json()["properties"]["provisioningState"] == "Succeeded"
    assert source_details(daemon, "3.0.0")[1:] == ("Completed", "")
    assert lun1_new > 0 and int(last.headers["x-blobrep-new-chunks"]) > 0

    done = wait_for_operation(daemon, described)
    assert done["status"] == "Succeeded", done
    regions = daemon.get(f"{VERSIONS}/3.0.0", params={"$expand": "ReplicationStatus"}).json()
    states = {row["region"]: row["state"] for row in regions["properties"]["replicationStatus"]["summary"]}
    assert states == {"westcentralus": "Completed", "eastus2": "Completed"}


def test_each_disk_reads_back_exactly_in_the_replicated_region(
    daemon: Daemon, disks: dict[int | None, bytes]
) -> None:
    if daemon.get(f"{VERSIONS}/3.0.0").status_code != 200:
        pytest.skip("needs the version the previous test published")
    for lun, data in disks.items():
        whole = read(daemon, "3.0.0", lun)
        assert whole.status_code == 200, whole.text
        assert whole.content == data, f"disk {lun} differs"
        digest = whole.headers["etag"]
        assert read(daemon, "3.0.0", lun, {"If-None-Match": digest}).status_code == 304
        head = read(daemon, "3.0.0", lun, method="HEAD")
        assert (head.status_code, head.headers["content-length"], head.content) == (200, str(len(data)), b"")
    ranged = read(daemon, "3.0.0", 1, {"Range": "bytes=1000000-2500000"})
    assert ranged.status_code == 206
    assert ranged.headers["content-range"] == f"bytes 1000000-2500000/{len(disks[1])}"
    assert ranged.content == disks[1][1000000:2500001]
    tags = {read(daemon, "3.0.0", lun, method="HEAD").headers["etag"] for lun in disks}
    assert len(tags) == 3, "each disk has its own digest"
    past = read(daemon, "3.0.0", 0, {"Range": f"bytes={len(disks[0])}-"})
    assert past.status_code == 416
    assert f"of the data disk at LUN 0 of /galleries/{GALLERY}/images/{IMAGE}/versions/3.0.0" in past.text


@pytest.mark.parametrize(
    ("lun", "status", "words"),
    [
        ("5", 404, "no data disk at LUN 5"),
        ("64", 400, "0 to 63"),
        ("x", 400, "0 to 63"),
        ("-1", 400, "0 to 63"),
    ],
)
def test_a_disk_the_version_lacks_is_not_read(daemon: Daemon, lun: str, status: int, words: str) -> None:
    if daemon.get(f"{VERSIONS}/3.0.0").status_code != 200:
        pytest.skip("needs the version the earlier test published")
    answer = daemon.get(f"{VERSIONS}/3.0.0/dataDisks/{lun}/content", params={"location": "eastus2"})
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"]["message"]


def test_uploads_out_of_turn_are_refused_in_words(daemon: Daemon) -> None:
    assert describe(daemon, "4.0.0", [0]).status_code == 201
    undescribed = upload(daemon, "4.0.0", 3, b"x" * 10)
    assert undescribed.status_code == 400
    assert "no data disk at LUN 3" in undescribed.json()["error"]["message"]
    assert upload(daemon, "4.0.0", 0, b"d" * 1000).status_code == 200
    twice = upload(daemon, "4.0.0", 0, b"d" * 1000)
    assert twice.status_code == 409
    message = twice.json()["error"]["message"]
    assert "data disk at LUN 0" in message and "uploaded already" in message and "the OS disk" in message
    bad_path = upload(daemon, "4.0.0", 64, b"x")
    assert bad_path.status_code == 400 and "0 to 63" in bad_path.json()["error"]["message"]
    assert upload(daemon, "4.0.0", None, b"o" * 1000).status_code == 200
    after = upload(daemon, "4.0.0", None, b"o" * 1000)
    assert after.status_code == 409 and "published already" in after.json()["error"]["message"]


@pytest.mark.parametrize(
    ("luns", "words"),
    [
        ([{"lun": 0}, {"lun": 0}], "given twice"),
        ([{"lun": 64}], "0 to 63"),
        ([{"lun": -1}], "must be from 0 to 63 (a data disk's logical unit number), not -1"),
        ([{"lun": 2**40}], "must be from 0 to 63"),
        ([{"lun": "0"}], "whole number"),
        ([{}], "needs its lun"),
        ([{"lun": 0, "caching": "ReadOnly"}], "caching"),
        ({"lun": 0}, "must be a list"),
    ],
)
def test_bad_data_disk_descriptions_are_refused_naming_the_field(
    daemon: Daemon, luns: Any, words: str
) -> None:
    body = {"properties": {"storageProfile": {"dataDiskImages": luns}}}
    answer = httpx.put(f"{daemon.url}{VERSIONS}/9.0.0", json=body, headers=daemon.headers(), timeout=30)
    assert answer.status_code == 400, answer.text
    assert words in answer.json()["error"]["message"]
    assert daemon.get(f"{VERSIONS}/9.0.0").status_code == 404, "a refused body records nothing"


def _broken_upload(daemon: Daemon, route: str, announced: int, sent: bytes) -> None:
    """An upload announcing ``announced`` bytes that sends ``sent`` and hangs up."""
    with raw_put(
        daemon.url, route, daemon.tokens["admin"], sent, head=f"Content-Length: {announced}"
    ) as connection:
        hang_up(connection)


def test_a_broken_off_data_disk_fails_the_version_and_describing_it_again_redoes_it(
    daemon: Daemon, disks: dict[int | None, bytes]
) -> None:
    assert describe(daemon, "5.0.0", [0, 1]).status_code == 201
    assert upload(daemon, "5.0.0", None, disks[None]).status_code == 200
    _broken_upload(daemon, disk_route("5.0.0", 1), len(disks[1]), disks[1][:100_000])
    deadline = time.monotonic() + 30
    while source_details(daemon, "5.0.0")[0] != "Failed" and time.monotonic() < deadline:
        time.sleep(0.05)
    state, region, details = source_details(daemon, "5.0.0")
    assert (state, region) == ("Failed", "Failed") and "upload of LUN 1" in details, details
    summary = daemon.get(f"{VERSIONS}/5.0.0", params={"$expand": "ReplicationStatus"}).json()["properties"]
    others = {s["region"]: s["details"] for s in summary["replicationStatus"]["summary"]}
    assert (
        others["eastus2"] == "not replicated: the create failed in westcentralus; the same create redoes it"
    )
    failed = daemon.get(f"{VERSIONS}/5.0.0").json()["properties"]["storageProfile"]
    assert "osDiskImage" not in failed, "no disk of a failed create stays recorded"
    refused = upload(daemon, "5.0.0", 0, disks[0])
    assert refused.status_code == 409 and "describe the version again" in refused.json()["error"]["message"]

    again = describe(daemon, "5.0.0", [0, 1])
    assert again.status_code == 201, again.text
    assert source_details(daemon, "5.0.0")[2].endswith("the OS disk, LUN 0, LUN 1")
    for lun in (0, 1, None):
        answer = upload(daemon, "5.0.0", lun, disks[lun])
        assert answer.status_code == 200, answer.text
    assert answer.json()["properties"]["provisioningState"] == "Succeeded"
    assert wait_for_operation(daemon, again)["status"] == "Succeeded"
    assert read(daemon, "5.0.0", 1).content == disks[1]


def test_a_remote_deployment_writes_every_disk(daemon: Daemon, with_disks: Path, tmp_path: Path) -> None:
    remote = ("--endpoint", daemon.url, "--token", daemon.tokens["admin"])
    image = ("--image", f"{VERSIONS}/2.0.0")
    made = blobrep(*remote, "vm", "create", *image, "-n", "web", "--output-dir", tmp_path, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "web" / "osdisk.img").read_bytes() == (daemon.cwd / "disk.raw").read_bytes()
    assert (tmp_path / "web" / "lun2.img").read_bytes() == with_disks.read_bytes()
    assert sorted(path.name for path in (tmp_path / "web").iterdir()) == ["lun2.img", "osdisk.img"]
    one_file = blobrep(*remote, "vm", "create", *image, "--output", tmp_path / "one.img", cwd=tmp_path)
    assert_one_line_error(one_file, 2, "has data disks", "use --output-dir")
    assert not (tmp_path / "one.img").exists()


def test_a_delete_while_a_disk_streams_in_is_busy_and_leaves_nothing_behind(
    daemon: Daemon, disks: dict[int | None, bytes]
) -> None:
    assert describe(daemon, "8.0.0", [0]).status_code == 201
    assert upload(daemon, "8.0.0", None, disks[None]).status_code == 200
    data = disks[0]
    half, token = data[: len(data) // 2], daemon.tokens["admin"]
    with raw_put(
        daemon.url, disk_route("8.0.0", 0), token, half, head=f"Content-Length: {len(data)}"
    ) as connection:
        deadline = time.monotonic() + 30
        while "publishing the uploaded data disk at LUN 0" not in source_details(daemon, "8.0.0")[2]:
            assert time.monotonic() < deadline, source_details(daemon, "8.0.0")
            time.sleep(0.02)
        for method in ("DELETE", "PUT"):
            busy = httpx.request(
                method,
                f"{daemon.url}{VERSIONS}/8.0.0",
                json=None if method == "DELETE" else {"properties": {}},
                headers=daemon.headers(),
                timeout=30,
            )
            assert busy.status_code == 503, (method, busy.text)
            assert int(busy.headers["Retry-After"]) >= 1
            assert "creation of /galleries/gal/images/img/versions/8.0.0" in busy.json()["error"]["message"]
            assert "still running; retry once it has finished" in busy.json()["error"]["message"]
        connection.sendall(data[len(data) // 2 :])
        connection.settimeout(30)
        answer = connection.recv(65536).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 200"), answer
    back = httpx.get(
        daemon.url + disk_route("8.0.0", 0),
        params={"location": "westcentralus"},
        headers=daemon.headers(),
        timeout=60,
    )
    assert back.status_code == 200 and back.content == data, "the upload the delete waited for is whole"
    shown = daemon.get(f"{VERSIONS}/8.0.0").json()["properties"]
    assert [disk["lun"] for disk in shown["storageProfile"]["dataDiskImages"]] == [0]

    deleted = httpx.delete(f"{daemon.url}{VERSIONS}/8.0.0", headers=daemon.headers(), timeout=30)
    assert deleted.status_code == 202, deleted.text
    assert daemon.get(f"{VERSIONS}/8.0.0").status_code == 404
    left = [
        path
        for path in daemon.home.glob(
            f"regions/*/replica-*/galleries/{GALLERY}/images/{IMAGE}/versions/8.0.0/**/*"
        )
        if path.is_file()
    ]
    assert left == [], "no manifest of the deleted version stays in any replica"


def test_a_version_that_received_a_disk_cannot_be_described_anew(
    daemon: Daemon, disks: dict[int | None, bytes]
) -> None:
    assert describe(daemon, "8.1.0", [0, 1]).status_code == 201
    assert upload(daemon, "8.1.0", 0, disks[0]).status_code == 200
    for luns in ([5], [0, 1], []):
        refused = describe(daemon, "8.1.0", luns)
        assert refused.status_code == 409, refused.text
        message = refused.json()["error"]["message"]
        assert "has received LUN 0 already" in message and "the OS disk, LUN 1" in message, message
    shown = daemon.get(f"{VERSIONS}/8.1.0").json()["properties"]["storageProfile"]
    assert [disk["lun"] for disk in shown["dataDiskImages"]] == [0, 1]
    assert shown["dataDiskImages"][0]["sizeInBytes"] == len(disks[0]), "the disk that arrived is kept"
    for lun in (1, None):
        assert upload(daemon, "8.1.0", lun, disks[lun]).status_code == 200
    back = httpx.get(
        daemon.url + disk_route("8.1.0", 0),
        params={"location": "westcentralus"},
        headers=daemon.headers(),
        timeout=60,
    )
    assert back.status_code == 200 and back.content == disks[0]
