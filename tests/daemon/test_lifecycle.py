"""The gallery lifecycle over HTTP: a definition's retention policy and its end-of-life flag,
and a version's deletion guard, in the ARM shapes (``retentionPolicy``,
``excludeEndOfLifeFromLatest``, ``safetyProfile.blockDeletionBeforeEndOfLife``, ``retention``)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from blobrep.core.definitions import format_datetime
from tests.daemon.conftest import GALLERY, IMAGE, Daemon

DEFINITION = f"/galleries/{GALLERY}/images/{IMAGE}"
VERSIONS = f"{DEFINITION}/versions"
#: A definition of its own for the retention policy, so that no other test's versions count.
KEPT = f"/galleries/{GALLERY}/images/kept"


def send(daemon: Daemon, method: str, route: str, body: Any = None, **params: str) -> httpx.Response:
    return httpx.request(
        method, daemon.url + route, json=body, params=params, headers=daemon.headers(), timeout=60
    )


def publish(
    daemon: Daemon, version: str, properties: dict[str, Any], versions: str = VERSIONS
) -> httpx.Response:
    described = send(daemon, "PUT", f"{versions}/{version}", {"properties": properties})
    assert described.status_code == 201, described.text
    data = (daemon.cwd / "disk.raw").read_bytes()
    uploaded = httpx.put(
        f"{daemon.url}{versions}/{version}/content", content=data, headers=daemon.headers(), timeout=60
    )
    assert uploaded.status_code == 200, uploaded.text
    return uploaded


def regions_of(daemon: Daemon, version: str) -> list[tuple[str, str]]:
    shown = send(daemon, "GET", f"{KEPT}/versions/{version}", **{"$expand": "ReplicationStatus"})
    assert shown.status_code == 200, shown.text
    summary = shown.json()["properties"]["replicationStatus"]["summary"]
    return [(status["region"], status["state"]) for status in summary]


def wait_for(daemon: Daemon, version: str, wanted: list[tuple[str, str]], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while (seen := regions_of(daemon, version)) != wanted:
        assert time.monotonic() < deadline, f"{version}: {seen}, not {wanted}"
        time.sleep(0.2)


def test_a_retention_policy_set_over_http_shrinks_older_versions_as_newer_ones_complete(
    daemon: Daemon,
) -> None:
    identifier = {"publisher": "p", "offer": "o", "sku": "kept"}
    created = send(daemon, "PUT", KEPT, {"properties": {"identifier": identifier, "osType": "Linux"}})
    assert created.status_code == 201, created.text
    assert created.json()["properties"]["retentionPolicy"] is None
    patched = send(daemon, "PATCH", KEPT, {"properties": {"retentionPolicy": {"keepGlobal": 1}}})
    assert patched.status_code == 200, patched.text
    policy = patched.json()["properties"]["retentionPolicy"]
    assert policy == {"keepGlobal": 1, "homeRegion": "westcentralus"}

    targets = [{"name": "westcentralus"}, {"name": "eastus2"}]
    profile = {
        "publishingProfile": {"targetRegions": targets},
        "safetyProfile": {"allowDeletionOfReplicatedLocations": True},
    }
    publish(daemon, "3.0.0", profile, f"{KEPT}/versions")
    both = [("westcentralus", "Completed"), ("eastus2", "Completed")]
    wait_for(daemon, "3.0.0", both)  # the daemon replicates in the background
    publish(daemon, "3.0.1", profile, f"{KEPT}/versions")
    wait_for(daemon, "3.0.1", both)
    wait_for(daemon, "3.0.0", [("westcentralus", "Completed")])
    shrunk = send(daemon, "GET", f"{KEPT}/versions/3.0.0").json()["properties"]
    assert shrunk["retention"]["shrunk"] is True
    assert shrunk["retention"]["details"].startswith("shrunk to westcentralus (keep-global 1")
    assert shrunk["publishingProfile"]["targetRegions"][0]["regionalReplicaCount"] == 1
    assert send(daemon, "GET", f"{KEPT}/versions/3.0.1").json()["properties"]["retention"] is None

    # 3.0.1 withdrawn: 3.0.0 is the newest again, grown back, and replicated in the background.
    withdrawn = send(daemon, "DELETE", f"{KEPT}/versions/3.0.1")
    assert withdrawn.status_code == 202, withdrawn.text
    wait_for(daemon, "3.0.0", both)
    grown = send(daemon, "GET", f"{KEPT}/versions/3.0.0").json()["properties"]
    assert grown["retention"]["shrunk"] is False
    assert grown["retention"]["details"].startswith("grown back to eastus2 (keep-global 1")
    latest = send(daemon, "GET", f"{KEPT}/versions/latest", location="eastus2")
    assert latest.status_code == 200 and latest.json()["name"] == "3.0.0"

    removed = send(daemon, "PATCH", KEPT, {"properties": {"retentionPolicy": None}})
    assert removed.status_code == 200 and removed.json()["properties"]["retentionPolicy"] is None
    bad = send(
        daemon,
        "PATCH",
        DEFINITION,
        {"properties": {"retentionPolicy": {"keepGlobal": 2, "homeRegion": "mars"}}},
    )
    assert bad.status_code == 400 and "unknown region 'mars'" in bad.json()["error"]["message"]
    for count in (-1, 1001, 2**31):
        wrong = send(daemon, "PATCH", DEFINITION, {"properties": {"retentionPolicy": {"keepGlobal": count}}})
        assert wrong.status_code == 400, wrong.text
        assert (
            "must be from 0 to 1000 (how many of the newest versions stay global"
            in wrong.json()["error"]["message"]
        )


def test_a_guarded_version_is_not_deleted_before_its_end_of_life(daemon: Daemon) -> None:
    end = format_datetime(datetime.now(UTC) + timedelta(days=10))
    guarded = {
        "publishingProfile": {"endOfLifeDate": end},
        "safetyProfile": {"blockDeletionBeforeEndOfLife": True},
    }
    published = publish(daemon, "4.0.0", guarded)
    assert published.json()["properties"]["safetyProfile"]["blockDeletionBeforeEndOfLife"] is True
    refused = send(daemon, "DELETE", f"{VERSIONS}/4.0.0")
    assert refused.status_code == 409, refused.text
    assert f"before its end of life, {end}" in refused.json()["error"]["message"]
    assert send(daemon, "GET", f"{VERSIONS}/4.0.0").status_code == 200

    lifted = send(
        daemon,
        "PATCH",
        f"{VERSIONS}/4.0.0",
        {"properties": {"safetyProfile": {"blockDeletionBeforeEndOfLife": False}}},
    )
    assert lifted.status_code in (200, 202), lifted.text
    deleted = send(daemon, "DELETE", f"{VERSIONS}/4.0.0")
    assert deleted.status_code in (200, 202, 204), deleted.text

    unguardable = send(
        daemon,
        "PUT",
        f"{VERSIONS}/4.0.1",
        {"properties": {"safetyProfile": {"blockDeletionBeforeEndOfLife": True}}},
    )
    assert unguardable.status_code == 400 and "no end-of-life date" in unguardable.json()["error"]["message"]


def test_latest_skips_expired_versions_once_the_definition_asks(daemon: Daemon) -> None:
    past = format_datetime(datetime.now(UTC) - timedelta(days=1))
    publish(daemon, "5.0.0", {"publishingProfile": {"endOfLifeDate": past}})
    assert send(daemon, "GET", f"{VERSIONS}/latest").json()["name"] == "5.0.0"
    asked = send(daemon, "PATCH", DEFINITION, {"properties": {"excludeEndOfLifeFromLatest": True}})
    assert asked.status_code == 200 and asked.json()["properties"]["excludeEndOfLifeFromLatest"] is True
    latest = send(daemon, "GET", f"{VERSIONS}/latest").json()["name"]
    assert latest != "5.0.0"
