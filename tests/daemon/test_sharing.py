"""Principals, group members and role assignments over HTTP, against a real server, each answer
checked against what the CLI says about the same thing on the same home."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from tests.cli.helpers import blobrep
from tests.daemon.conftest import GALLERY, IMAGE, Daemon

PRINCIPAL_TYPE = "blobrep/principals"


def test_a_method_a_sharing_route_lacks_is_a_405(daemon: Daemon) -> None:
    response = send(daemon, "PUT", f"/roleAssignments/{uuid.uuid4()}", {})
    assert response.status_code == 405 and response.json()["error"]["code"] == "MethodNotAllowed"


def send(
    daemon: Daemon, method: str, route: str, body: Any = None, principal: str | None = "admin"
) -> httpx.Response:
    """``method route`` with ``body`` (JSON, or raw bytes) as ``principal``."""
    content = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {**daemon.headers(principal), "Content-Type": "application/json"}
    return httpx.request(method, daemon.url + route, headers=headers, content=content, timeout=30)


def cli(daemon: Daemon, *args: str, caller: str | None = None) -> Any:
    """The JSON the CLI prints for ``args`` on the daemon's home, run as ``caller``."""
    result = blobrep(*args, cwd=daemon.cwd, env={"BLOBREP_AS": caller} if caller else None)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout else None


def cli_error(daemon: Daemon, *args: str, caller: str | None = None) -> str:
    """The one-line error the CLI prints for ``args``, without its ``blobrep: error:`` prefix."""
    result = blobrep(*args, cwd=daemon.cwd, env={"BLOBREP_AS": caller} if caller else None)
    assert result.returncode != 0, result.stdout
    return result.stderr.strip().removeprefix("blobrep: error: ")


def error(response: httpx.Response, status: int, code: str) -> str:
    """The message of an ARM error answer, once its status and code are as expected."""
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text
    message: str = response.json()["error"]["message"]
    return message


def principal_body(kind: str) -> dict[str, Any]:
    return {"properties": {"principalType": kind}}


def as_cli_principal(resource: dict[str, Any]) -> dict[str, Any]:
    """A principal resource in the shape ``blobrep principal show`` prints."""
    return {"name": resource["name"], "type": resource["properties"]["principalType"]}


def all_pages(daemon: Daemon, route: str, principal: str = "admin") -> list[dict[str, Any]]:
    """Every item of a list, following ``nextLink`` to its end."""
    items: list[dict[str, Any]] = []
    url: str | None = daemon.url + route
    while url is not None:
        response = httpx.get(url, headers=daemon.headers(principal), timeout=30)
        assert response.status_code == 200, response.text
        items += response.json()["value"]
        url = response.json()["nextLink"]
    return items


# --- principals ---------------------------------------------------------------------------


def test_a_principal_is_created_shown_listed_and_deleted(daemon: Daemon) -> None:
    created = send(daemon, "PUT", "/principals/alice", principal_body("User"))
    assert created.status_code == 201, created.text
    assert created.json() == {
        "id": "/principals/alice",
        "name": "alice",
        "type": PRINCIPAL_TYPE,
        "properties": {"principalType": "user"},
    }
    assert as_cli_principal(created.json()) == cli(daemon, "principal", "show", "--name", "alice")

    again = send(daemon, "PUT", "/principals/alice", principal_body("user"))
    assert again.status_code == 200 and again.json() == created.json()
    retyped = send(daemon, "PUT", "/principals/alice", principal_body("group"))
    assert error(retyped, 409, "ResourceAlreadyExists") == (
        "principal 'alice' already exists as a user, not a group; delete it first to make it a group"
    )
    assert daemon.get("/principals/alice").json() == created.json()

    listed = daemon.get("/principals")
    assert listed.json()["nextLink"] is None
    assert [as_cli_principal(item) for item in listed.json()["value"]] == cli(daemon, "principal", "list")
    assert "alice" in [item["name"] for item in listed.json()["value"]]

    assert send(daemon, "DELETE", "/principals/alice").status_code == 204
    gone = daemon.get("/principals/alice")
    assert error(gone, 404, "ResourceNotFound") == cli_error(daemon, "principal", "show", "--name", "alice")
    assert send(daemon, "DELETE", "/principals/alice").status_code == 404


def test_principals_page_through_next_links(daemon: Daemon) -> None:
    for number in range(5):
        send(daemon, "PUT", f"/principals/pager{number}", principal_body("servicePrincipal"))
    first = daemon.get("/principals", params={"$top": "2"}).json()
    assert len(first["value"]) == 2 and first["nextLink"] is not None
    paged = all_pages(daemon, "/principals?$top=2")
    assert [as_cli_principal(item) for item in paged] == cli(daemon, "principal", "list")
    assert {"name": "pager3", "type": "servicePrincipal"} in [as_cli_principal(item) for item in paged]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "properties.principalType is required"),
        ({"properties": {"principalType": 3}}, "'principalType' in properties must be a string"),
        (
            {"properties": {"principalType": "user", "colour": "red"}},
            "unknown field(s) 'colour' in properties",
        ),
        ({"name": "bob", **principal_body("user")}, "unknown field(s) 'name' in the body"),
        ({"properties": ["user"]}, "'properties' in the body must be an object"),
        (b"{not json", "not JSON"),
    ],
    ids=["no type", "number", "unknown property", "unknown top", "list", "not json"],
)
def test_a_bad_principal_body_is_a_400_naming_what_is_wrong(daemon: Daemon, body: Any, fragment: str) -> None:
    response = send(daemon, "PUT", "/principals/bob", body)
    assert fragment in error(response, 400, "InvalidParameter")
    assert daemon.get("/principals/bob").status_code == 404


def test_a_bad_principal_type_or_name_reads_as_the_cli_says_it(daemon: Daemon) -> None:
    robot = send(daemon, "PUT", "/principals/bob", principal_body("robot"))
    expected = cli_error(daemon, "principal", "create", "--name", "bob", "--type", "robot")
    assert error(robot, 400, "InvalidParameter") == expected
    dashed = send(daemon, "PUT", "/principals/-bob", principal_body("user"))
    expected = cli_error(daemon, "principal", "create", "--name=-bob", "--type", "user")
    assert error(dashed, 400, "InvalidParameter") == expected
    assert daemon.get("/principals/bob").status_code == 404


def test_the_bootstrap_admin_stays(daemon: Daemon) -> None:
    refused = send(daemon, "DELETE", "/principals/admin")
    assert error(refused, 409, "Conflict") == cli_error(daemon, "principal", "delete", "--name", "admin")
    (owner,) = [
        item
        for item in daemon.get("/roleAssignments", params={"assignee": "admin", "scope": "/"}).json()["value"]
        if item["properties"]["roleDefinitionName"] == "Owner"
    ]
    kept = send(daemon, "DELETE", owner["id"])
    expected = cli_error(
        daemon, "role", "assignment", "delete", "--assignee", "admin", "--role", "Owner", "--scope", "/"
    )
    assert error(kept, 409, "Conflict") == expected
    assert daemon.get(owner["id"]).status_code == 200


# --- group members ------------------------------------------------------------------------


def test_a_group_gains_and_loses_members(daemon: Daemon) -> None:
    assert send(daemon, "PUT", "/principals/ops", principal_body("Group")).status_code == 201
    for name in ("erin", "frank"):
        assert send(daemon, "PUT", f"/principals/{name}", principal_body("user")).status_code == 201

    added = send(daemon, "PUT", "/principals/ops/members/frank")
    assert added.status_code == 201, added.text
    assert added.json() == {
        "id": "/principals/ops/members/frank",
        "name": "frank",
        "type": "blobrep/principals/members",
        "properties": {"groupName": "ops", "principalName": "frank"},
    }
    assert send(daemon, "PUT", "/principals/ops/members/erin", {}).status_code == 201
    again = send(daemon, "PUT", "/principals/ops/members/erin", {"properties": {}})
    assert again.status_code == 200 and again.json()["id"] == "/principals/ops/members/erin"

    members = daemon.get("/principals/ops/members").json()
    assert members["nextLink"] is None
    listed = cli(daemon, "group", "member", "list", "--group", "ops")
    assert {"group": "ops", "members": [item["name"] for item in members["value"]]} == listed
    assert listed["members"] == ["erin", "frank"]
    assert daemon.get("/principals/ops/members/erin").json()["properties"]["principalName"] == "erin"

    assert send(daemon, "DELETE", "/principals/ops/members/erin").status_code == 204
    assert cli(daemon, "group", "member", "list", "--group", "ops")["members"] == ["frank"]
    outsider = daemon.get("/principals/ops/members/erin")
    removed_again = send(daemon, "DELETE", "/principals/ops/members/erin")
    expected = cli_error(daemon, "group", "member", "remove", "--group", "ops", "--member", "erin")
    assert error(removed_again, 404, "ResourceNotFound") == expected
    assert error(outsider, 404, "ResourceNotFound") == expected


def test_membership_mistakes_read_as_the_cli_says_them(daemon: Daemon) -> None:
    send(daemon, "PUT", "/principals/gina", principal_body("user"))
    send(daemon, "PUT", "/principals/devs", principal_body("group"))
    not_a_group = daemon.get("/principals/gina/members")
    expected = cli_error(daemon, "group", "member", "list", "--group", "gina")
    assert error(not_a_group, 400, "InvalidParameter") == expected
    no_group = daemon.get("/principals/nogroup/members")
    expected = cli_error(daemon, "group", "member", "list", "--group", "nogroup")
    assert error(no_group, 404, "ResourceNotFound") == expected
    no_member = send(daemon, "PUT", "/principals/devs/members/ghost")
    expected = cli_error(daemon, "group", "member", "add", "--group", "devs", "--member", "ghost")
    assert error(no_member, 404, "ResourceNotFound") == expected
    itself = send(daemon, "PUT", "/principals/devs/members/devs")
    expected = cli_error(daemon, "group", "member", "add", "--group", "devs", "--member", "devs")
    assert error(itself, 400, "InvalidParameter") == expected
    with_properties = send(daemon, "PUT", "/principals/devs/members/gina", {"properties": {"role": "x"}})
    assert "a membership has no properties" in error(with_properties, 400, "InvalidParameter")
    assert cli(daemon, "group", "member", "list", "--group", "devs")["members"] == []


# --- role assignments ---------------------------------------------------------------------


def assignment_body(assignee: str, role: str, scope: str) -> dict[str, Any]:
    return {"properties": {"principalName": assignee, "roleDefinitionName": role, "scope": scope}}


def test_a_role_assignment_is_created_found_listed_and_deleted(daemon: Daemon) -> None:
    send(daemon, "PUT", "/principals/carol", principal_body("user"))
    scope = f"/galleries/{GALLERY}/images/{IMAGE}"
    created = send(daemon, "POST", "/roleAssignments", assignment_body("carol", "reader", scope))
    assert created.status_code == 201, created.text
    resource = created.json()
    documented = uuid.uuid5(uuid.UUID("627e2cd4-8c2e-4622-9e19-d1d3b73d3331"), f"carol\nReader\n{scope}")
    assert resource["name"] == str(documented)
    assert resource["id"] == f"/roleAssignments/{resource['name']}"
    assert resource["type"] == "blobrep/roleAssignments"
    assert created.headers["Location"] == daemon.url + resource["id"]
    assert [resource["properties"]] == cli(daemon, "role", "assignment", "list", "--assignee", "carol")
    assert resource["properties"] == {
        "principalName": "carol",
        "roleDefinitionName": "Reader",
        "scope": scope,
    }

    again = send(daemon, "POST", "/roleAssignments", assignment_body("carol", "READER", scope))
    assert again.status_code == 200 and again.json() == resource
    assert daemon.get(resource["id"]).json() == resource
    assert daemon.get("/roleAssignments", params={"assignee": "carol"}).json()["value"] == [resource]
    at_scope = daemon.get("/roleAssignments", params={"scope": scope}).json()["value"]
    assert [item["properties"] for item in at_scope] == cli(
        daemon, "role", "assignment", "list", "--scope", scope
    )
    everything = all_pages(daemon, "/roleAssignments?$top=2")
    assert [item["properties"] for item in everything] == cli(daemon, "role", "assignment", "list")
    assert len({item["id"] for item in everything}) == len(everything)

    assert send(daemon, "DELETE", resource["id"]).status_code == 204
    assert cli(daemon, "role", "assignment", "list", "--assignee", "carol") == []
    assert error(daemon.get(resource["id"]), 404, "ResourceNotFound").startswith(
        f"role assignment {resource['name']!r} not found"
    )
    assert send(daemon, "DELETE", resource["id"]).status_code == 404

    made_again = send(daemon, "POST", "/roleAssignments", assignment_body("carol", "Reader", scope))
    assert made_again.status_code == 201 and made_again.json()["id"] == resource["id"]


def test_an_assignment_made_by_the_cli_is_found_by_its_id(daemon: Daemon) -> None:
    send(daemon, "PUT", "/principals/dave", principal_body("user"))
    scope = f"/galleries/{GALLERY}/images/{IMAGE}/versions/1.0.0"
    made = cli(
        daemon, "role", "assignment", "create", "--assignee", "dave", "--role", "Owner", "--scope", scope
    )
    (listed,) = daemon.get("/roleAssignments", params={"assignee": "dave"}).json()["value"]
    assert listed["properties"] == made
    posted = send(daemon, "POST", "/roleAssignments", assignment_body("dave", "owner", scope))
    assert posted.status_code == 200 and posted.json()["id"] == listed["id"]


@pytest.mark.parametrize(
    ("assignee", "role", "scope"),
    [
        ("reader", "Reader", "/galleries/nope"),
        ("reader", "Admin", f"/galleries/{GALLERY}"),
        ("ghost", "Reader", f"/galleries/{GALLERY}"),
        ("reader", "Reader", "/gallery/x"),
        ("reader", "Reader", f"/galleries/{GALLERY}/images/{IMAGE}/versions/latest"),
    ],
    ids=["no such scope", "no such role", "no such principal", "malformed scope", "latest"],
)
def test_an_assignment_mistake_reads_as_the_cli_says_it(
    daemon: Daemon, assignee: str, role: str, scope: str
) -> None:
    response = send(daemon, "POST", "/roleAssignments", assignment_body(assignee, role, scope))
    expected = cli_error(
        daemon, "role", "assignment", "create", "--assignee", assignee, "--role", role, "--scope", scope
    )
    assert response.status_code in (400, 404), response.text
    assert response.json()["error"]["message"] == expected


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (
            {"properties": {"principalName": "reader", "scope": "/"}},
            "properties.roleDefinitionName is required",
        ),
        (
            {"properties": {**assignment_body("reader", "Reader", "/")["properties"], "condition": "x"}},
            "unknown field(s) 'condition' in properties",
        ),
        (
            {"properties": {"principalName": "reader", "roleDefinitionName": 1, "scope": "/"}},
            "'roleDefinitionName' in properties must be a string",
        ),
        ([1], "not an object"),
    ],
    ids=["missing role", "unknown property", "number", "array"],
)
def test_a_bad_assignment_body_is_a_400(daemon: Daemon, body: Any, fragment: str) -> None:
    response = send(daemon, "POST", "/roleAssignments", body)
    assert fragment in error(response, 400, "InvalidParameter")


def test_assignment_lists_take_the_cli_filters(daemon: Daemon) -> None:
    malformed = daemon.get("/roleAssignments", params={"scope": "galleries"})
    assert error(malformed, 400, "InvalidParameter").startswith("invalid resource id 'galleries'")
    assert daemon.get("/roleAssignments/not-an-id").status_code == 404
    for caller in ("reader", "nobody"):
        seen = daemon.get("/roleAssignments", caller).json()["value"]
        assert [item["properties"] for item in seen] == cli(
            daemon, "role", "assignment", "list", caller=caller
        )
    (own,) = daemon.get("/roleAssignments", "reader", params={"assignee": "reader"}).json()["value"]
    assert own["properties"] == {
        "principalName": "reader",
        "roleDefinitionName": "Reader",
        "scope": f"/galleries/{GALLERY}",
    }


# --- access -------------------------------------------------------------------------------

SHARING_ROUTES = [
    ("GET", "/principals"),
    ("GET", "/principals/reader"),
    ("PUT", "/principals/reader"),
    ("DELETE", "/principals/reader"),
    ("GET", "/principals/team/members"),
    ("GET", "/principals/team/members/reader"),
    ("PUT", "/principals/team/members/reader"),
    ("DELETE", "/principals/team/members/reader"),
    ("GET", "/roleAssignments"),
    ("POST", "/roleAssignments"),
    ("GET", f"/roleAssignments/{uuid.uuid4()}"),
    ("DELETE", f"/roleAssignments/{uuid.uuid4()}"),
]


@pytest.mark.parametrize(("method", "route"), SHARING_ROUTES, ids=[" ".join(pair) for pair in SHARING_ROUTES])
def test_every_sharing_route_needs_a_token(daemon: Daemon, method: str, route: str) -> None:
    response = send(daemon, method, route, principal_body("user"), principal=None)
    assert error(response, 401, "AuthenticationFailed")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="blobrep"'
    assert daemon.get("/principals/reader").json()["properties"]["principalType"] == "user"


def test_sharing_writes_need_the_role_the_cli_names(daemon: Daemon) -> None:
    send(daemon, "PUT", "/principals/team", principal_body("group"))
    assert daemon.get("/principals", "reader").status_code == 200
    assert daemon.get("/principals/team/members", "nobody").status_code == 200

    denied = send(daemon, "PUT", "/principals/mallory", principal_body("user"), "reader")
    expected = cli_error(
        daemon, "principal", "create", "--name", "mallory", "--type", "user", caller="reader"
    )
    assert error(denied, 403, "AuthorizationFailed") == expected
    assert daemon.get("/principals/mallory").status_code == 404

    joined = send(daemon, "PUT", "/principals/team/members/reader", None, "reader")
    expected = cli_error(
        daemon, "group", "member", "add", "--group", "team", "--member", "reader", caller="reader"
    )
    assert error(joined, 403, "AuthorizationFailed") == expected
    assert error(send(daemon, "DELETE", "/principals/nobody", None, "reader"), 403, "AuthorizationFailed")
    assert daemon.get("/principals/nobody").status_code == 200

    scope = f"/galleries/{GALLERY}"
    granted = send(daemon, "POST", "/roleAssignments", assignment_body("nobody", "Reader", scope), "reader")
    expected = cli_error(
        daemon, "role", "assignment", "create", "--assignee", "nobody", "--role", "Reader", "--scope", scope,
        caller="reader",
    )  # fmt: skip
    assert error(granted, 403, "AuthorizationFailed") == expected
    assert daemon.get("/roleAssignments", "nobody").json()["value"] == []

    (own,) = daemon.get("/roleAssignments", "reader", params={"assignee": "reader"}).json()["value"]
    dropped = send(daemon, "DELETE", own["id"], None, "reader")
    expected = cli_error(
        daemon, "role", "assignment", "delete", "--assignee", "reader", "--role", "Reader", "--scope", scope,
        caller="reader",
    )  # fmt: skip
    assert error(dropped, 403, "AuthorizationFailed") == expected
    unseen = daemon.get(own["id"], "nobody")
    assert error(unseen, 404, "ResourceNotFound") == (
        f"role assignment {own['name']!r} not found among those principal 'nobody' can see;"
        " GET /roleAssignments lists them"
    )
    assert error(send(daemon, "DELETE", own["id"], None, "nobody"), 404, "ResourceNotFound")
    at_home = daemon.get("/roleAssignments", "reader", params={"scope": "/"})
    expected = cli_error(daemon, "role", "assignment", "list", "--scope", "/", caller="reader")
    assert error(at_home, 403, "AuthorizationFailed") == expected
    assert daemon.get(own["id"], "reader").json() == own
