"""Creating, updating and deleting galleries and definitions over HTTP, against a real server."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.daemon.conftest import GALLERY, IMAGE, Daemon

DEFINITION_BODY: dict[str, Any] = {
    "location": "westcentralus",
    "properties": {
        "identifier": {"publisher": "contoso", "offer": "debian", "sku": "12"},
        "osType": "Linux",
        "osState": "Generalized",
        "hyperVGeneration": "V2",
        "recommended": {"vCPUs": {"min": 1, "max": 8}, "memory": {"min": 2, "max": 32}},
        "description": "Debian 12",
    },
}


def send(daemon: Daemon, method: str, route: str, body: Any, principal: str = "admin") -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.request(
        method,
        daemon.url + route,
        headers={**daemon.headers(principal), "Content-Type": "application/json"},
        content=content,
        timeout=30,
    )


def test_a_gallery_is_created_updated_and_deleted(daemon: Daemon) -> None:
    created = send(
        daemon, "PUT", "/galleries/web", {"location": "eastus2", "properties": {"description": "a"}}
    )
    assert created.status_code == 201, created.text
    assert created.json()["id"] == "/galleries/web" and created.json()["location"] == "eastus2"
    assert created.json()["properties"]["description"] == "a"

    again = send(daemon, "PUT", "/galleries/web", {"properties": {"description": "b"}})
    assert again.status_code == 200 and again.json()["properties"]["description"] == "b"
    moved = send(daemon, "PUT", "/galleries/web", {"location": "westeurope"})
    assert moved.status_code == 400
    assert moved.json()["error"]["message"] == (
        "gallery 'web' is in eastus2; its location cannot change to 'westeurope'"
    )
    patched = send(daemon, "PATCH", "/galleries/web", {"properties": {"description": "c"}})
    assert patched.status_code == 200 and patched.json()["properties"]["description"] == "c"
    assert daemon.get("/galleries/web").json()["properties"]["description"] == "c"

    assert daemon.request("DELETE", "/galleries/web").status_code == 204
    assert daemon.get("/galleries/web").status_code == 404


def test_a_definition_is_created_updated_and_deleted(daemon: Daemon) -> None:
    route = f"/galleries/{GALLERY}/images/debian"
    created = send(daemon, "PUT", route, DEFINITION_BODY)
    assert created.status_code == 201, created.text
    properties = created.json()["properties"]
    assert properties["identifier"] == {"publisher": "contoso", "offer": "debian", "sku": "12"}
    assert properties["recommended"] == {"vCPUs": {"min": 1, "max": 8}, "memory": {"min": 2, "max": 32}}
    assert created.json()["type"] == "blobrep/galleries/images"

    replaced = send(daemon, "PUT", route, {**DEFINITION_BODY, "properties": {"description": "Debian twelve"}})
    assert replaced.status_code == 200 and replaced.json()["properties"]["description"] == "Debian twelve"
    patched = send(daemon, "PATCH", route, {"properties": {"recommended": {"vCPUs": {"max": 4}}}})
    assert patched.status_code == 200
    assert patched.json()["properties"]["recommended"]["vCPUs"] == {"min": 1, "max": 4}
    fixed = send(daemon, "PATCH", route, {"properties": {"osType": "Windows"}})
    assert fixed.status_code == 400
    assert fixed.json()["error"]["message"].startswith(
        f"cannot change osType of image definition {GALLERY}/debian from Linux to Windows"
    )

    assert daemon.request("DELETE", route).status_code == 204
    assert daemon.get(route).status_code == 404


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not an object"),
        (b'{"properties": {}, "properties": {}}', "names 'properties' twice"),
        ({"properties": {"osType": 5}}, "'osType' in properties must be a string"),
        ({"properties": {"recommended": {"vCPUs": {"min": True}}}}, "must be a whole number"),
        ({"properties": {"recommended": {"vCPUs": {"min": 10**30}}}}, "must be from 0 to 2147483647"),
        ({"properties": {"colour": "red"}}, "unknown field(s) 'colour' in properties"),
        ({"sku": "12"}, "unknown field(s) 'sku' in the body"),
    ],
    ids=[
        "not json",
        "array",
        "duplicate key",
        "wrong type",
        "bool for int",
        "huge int",
        "unknown property",
        "unknown top",
    ],
)
def test_a_bad_body_is_a_400_naming_what_is_wrong(daemon: Daemon, body: Any, fragment: str) -> None:
    response = send(daemon, "PUT", f"/galleries/{GALLERY}/images/bad", body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "InvalidParameter" and fragment in error["message"]
    assert daemon.get(f"/galleries/{GALLERY}/images/bad").status_code == 404


def test_a_body_too_large_is_refused_without_being_read_whole(daemon: Daemon) -> None:
    response = send(daemon, "PUT", "/galleries/huge", b'{"properties": {"description": "' + b"x" * 200_000)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "RequestEntityTooLarge"
    assert daemon.get("/galleries/huge").status_code == 404


def test_writes_need_the_role(daemon: Daemon) -> None:
    assert send(daemon, "PUT", "/galleries/readers", {}, principal="reader").status_code == 403
    denied = send(daemon, "PATCH", f"/galleries/{GALLERY}", {"properties": {"description": "x"}}, "reader")
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "AuthorizationFailed"
    assert daemon.request("DELETE", f"/galleries/{GALLERY}/images/{IMAGE}", "nobody").status_code == 403
    assert daemon.get(f"/galleries/{GALLERY}/images/{IMAGE}").status_code == 200


def test_a_gallery_that_holds_definitions_is_not_deleted(daemon: Daemon) -> None:
    response = daemon.request("DELETE", f"/galleries/{GALLERY}")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "Conflict"
    assert daemon.get(f"/galleries/{GALLERY}").status_code == 200
