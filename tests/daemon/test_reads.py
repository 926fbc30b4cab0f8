"""The daemon's read routes against a real server: ARM shapes, tokens, roles, paging, errors."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import httpx
import pytest

from tests.cli.helpers import blobrep
from tests.daemon.conftest import GALLERY, IMAGE, Daemon, ok, start, stop

VERSIONS = f"/galleries/{GALLERY}/images/{IMAGE}/versions"


def test_liveness_and_readiness_need_no_token(daemon: Daemon) -> None:
    assert daemon.get("/livez", None).json() == {"status": "ok"}
    ready = daemon.get("/readyz", None)
    assert ready.status_code == 200 and ready.json() == {"status": "ok"}


@pytest.mark.parametrize(
    "route",
    ["/galleries", f"/galleries/{GALLERY}", f"/galleries/{GALLERY}/images", f"{VERSIONS}/1.0.0", VERSIONS],
)
@pytest.mark.parametrize(
    "authorization", [None, "Bearer", "Basic YWRtaW46eA==", "Bearer brp_not-a-token", "Bearer " + "x" * 60]
)
def test_every_route_refuses_a_request_without_a_valid_token(
    daemon: Daemon, route: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = httpx.get(daemon.url + route, headers=headers, timeout=30)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="blobrep"'
    error = response.json()["error"]
    assert error["code"] == "AuthenticationFailed" and error["message"]
    assert "brp_not-a-token" not in error["message"]


def test_resources_have_arm_shapes(daemon: Daemon) -> None:
    galleries = daemon.get("/galleries").json()
    assert galleries["nextLink"] is None
    (gallery,) = galleries["value"]
    assert {key: gallery[key] for key in ("id", "name", "type", "location")} == {
        "id": f"/galleries/{GALLERY}",
        "name": GALLERY,
        "type": "blobrep/galleries",
        "location": "westcentralus",
    }
    assert gallery["properties"]["provisioningState"] == "Succeeded"
    version = daemon.get(f"{VERSIONS}/1.0.0").json()
    assert version["id"] == f"{VERSIONS}/1.0.0" and version["type"] == "blobrep/galleries/images/versions"
    properties = version["properties"]
    assert properties["publishingProfile"]["targetRegions"] == [
        {
            "name": "westcentralus",
            "regionalReplicaCount": 1,
            "storageAccountType": "Standard_LRS",
            "excludeFromLatest": False,
        }
    ]
    assert properties["storageProfile"]["sizeInBytes"] == 2 * 1024 * 1024
    assert "replicationStatus" not in properties
    expanded = daemon.get(f"{VERSIONS}/1.0.0", params={"$expand": "ReplicationStatus"}).json()
    status = expanded["properties"]["replicationStatus"]
    assert status["aggregatedState"] == "Completed"
    assert [(item["region"], item["state"]) for item in status["summary"]] == [("westcentralus", "Completed")]


def test_latest_resolves_wherever_a_version_name_does(daemon: Daemon) -> None:
    assert daemon.get(f"{VERSIONS}/latest").json()["name"] == "1.0.1"
    elsewhere = daemon.get(f"{VERSIONS}/latest", params={"location": "westeurope"})
    assert elsewhere.status_code == 404
    assert "has no version usable in westeurope" in elsewhere.json()["error"]["message"]


def test_a_reader_reads_and_a_principal_without_a_role_gets_the_cli_s_denial(daemon: Daemon) -> None:
    assert daemon.get(f"{VERSIONS}/1.0.0", "reader").status_code == 200
    denied = daemon.get(f"/galleries/{GALLERY}", "nobody")
    assert denied.status_code == 403
    cli = blobrep("--as", "nobody", "sig", "show", "-r", GALLERY, cwd=daemon.cwd)
    assert cli.returncode == 1
    assert denied.json()["error"] == {
        "code": "AuthorizationFailed",
        "message": cli.stderr.strip().removeprefix("blobrep: error: "),
    }
    # A missing gallery is refused in the same words to whoever may not see it.
    missing = daemon.get("/galleries/nowhere", "nobody")
    assert missing.status_code == 403
    assert daemon.get("/galleries", "nobody").json() == {"value": [], "nextLink": None}


def test_errors_are_arm_error_bodies(daemon: Daemon) -> None:
    cases = {
        f"{VERSIONS}/9.9.9": (404, "ResourceNotFound"),
        f"{VERSIONS}/1.x": (400, "InvalidParameter"),
        "/galleries/Bad_Name!": (400, "InvalidParameter"),
        "/nothing/here": (404, "NotFound"),
        "/galleries?$top=0": (400, "InvalidParameter"),
        "/galleries?$top=nan": (400, "InvalidParameter"),
        f"{VERSIONS}?$expand=Everything": (400, "InvalidParameter"),
    }
    for route, (status, code) in cases.items():
        response = daemon.get(route)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), route
        assert response.json()["error"]["message"], route
    not_allowed = daemon.request("POST", "/livez")
    assert not_allowed.status_code == 405 and not_allowed.json()["error"]["code"] == "MethodNotAllowed"


def test_lists_page_with_next_links(daemon: Daemon) -> None:
    first = daemon.get(VERSIONS, params={"$top": "1"}).json()
    assert [item["name"] for item in first["value"]] == ["1.0.0"]
    assert first["nextLink"] is not None
    second = httpx.get(first["nextLink"], headers=daemon.headers(), timeout=30).json()
    assert [item["name"] for item in second["value"]] == ["1.0.1"]
    assert second["nextLink"] is None


def test_sigterm_stops_the_daemon_with_exit_0(tmp_path_factory: pytest.TempPathFactory) -> None:
    cwd = tmp_path_factory.mktemp("stop")
    ok(cwd, "sig", "list")
    url, process = start(cwd, cwd / ".blobrep")
    assert httpx.get(f"{url}/livez", timeout=10).status_code == 200
    code, err = stop(process)
    assert code == 0, err
    assert "Traceback" not in err
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/livez", timeout=2)


def test_serve_refuses_a_bad_port_before_starting(tmp_path_factory: pytest.TempPathFactory) -> None:
    cwd = tmp_path_factory.mktemp("port")
    result = blobrep("serve", "--port", "70000", cwd=cwd)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "--port" in result.stderr and "70000" in result.stderr


def test_head_answers_every_readable_resource_like_get_without_a_body(daemon: Daemon) -> None:
    for route in (
        "/galleries",
        f"/galleries/{GALLERY}",
        f"/galleries/{GALLERY}/images/{IMAGE}/versions/1.0.0",
    ):
        head = daemon.request("HEAD", route)
        get = daemon.get(route)
        assert head.status_code == get.status_code == 200, route
        assert head.content == b""
        assert head.headers["content-length"] == get.headers["content-length"]
    assert daemon.request("HEAD", f"/galleries/{GALLERY}", principal=None).status_code == 401


def test_a_token_revoked_or_expired_while_the_daemon_runs_is_refused_at_once(daemon: Daemon) -> None:
    revoked = json.loads(ok(daemon.cwd, "token", "create", "--principal", "reader"))
    expiring = json.loads(ok(daemon.cwd, "token", "create", "--principal", "reader", "--expires", "5s"))
    for token in (revoked, expiring):
        answer = httpx.get(
            f"{daemon.url}/galleries", headers={"Authorization": f"Bearer {token['token']}"}, timeout=30
        )
        assert answer.status_code == 200, answer.text
    ok(daemon.cwd, "token", "revoke", revoked["id"])
    refused = httpx.get(
        f"{daemon.url}/galleries", headers={"Authorization": f"Bearer {revoked['token']}"}, timeout=30
    )
    assert refused.status_code == 401
    assert "revoked" in refused.json()["error"]["message"]
    assert revoked["token"] not in refused.text, "the token text is never repeated back"
    expires = datetime.fromisoformat(expiring["expires"].replace("Z", "+00:00"))
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.2)
    expired = httpx.get(
        f"{daemon.url}/galleries", headers={"Authorization": f"Bearer {expiring['token']}"}, timeout=30
    )
    assert expired.status_code == 401
    assert "expired" in expired.json()["error"]["message"]
