"""The HTTP access matrix: every route, as a principal holding each role at each scope.

Thirteen principals call every route: Reader, Contributor and Owner, each held at ``/``, at
the gallery ``gal``, at its definition ``gal/img`` or at its version ``gal/img/1.0.0`` (the
fixture's line of scopes), and one principal with no role at all. Each cell's status is worked
out from the role model written down here, independently of the code under test:

* Reader may read and deploy; Contributor also write and delete; Owner also manage access.
* A role reaches its scope and everything below it, never a parent or a sibling: Owner of the
  version may not read its definition, Owner of the definition may not create a definition
  beside it, only a role at ``/`` creates galleries, only Owner at ``/`` manages principals.
* A caller sees a scope (lists inside it, finds an assignment there by id) if it may read
  there or holds a role below it.

A route is one row of :data:`ROWS`: method, route, the action the service checks and the
level of the scope it checks it at, the status when allowed, and how to make its body. Rows
that would destroy the fixture act on throwaway resources made for each cell by the admin; a
throwaway carries, for a principal whose role sits at the throwaway's own level, the same role
on the throwaway, so "Owner of the definition deletes it" is a cell like any other.
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
import pytest

from tests.cli.helpers import blobrep
from tests.daemon.conftest import GALLERY, IMAGE, Daemon

LOCATION: Final = "westcentralus"
G_PATH: Final = f"/galleries/{GALLERY}"
D_PATH: Final = f"{G_PATH}/images/{IMAGE}"
VERSIONS: Final = f"{D_PATH}/versions"
V_PATH: Final = f"{VERSIONS}/1.0.0"

HOME, GAL, DEF, VER = range(4)
MANAGE: Final = "manageAccess"
LEVELS: Final = (HOME, GAL, DEF, VER)
LEVEL_NAMES: Final = ("home", "gallery", "definition", "version")
#: The scope at each level of the fixture's line.
LINE: Final = ("/", G_PATH, D_PATH, V_PATH)

#: What each role allows: the role model the expectations follow.
GRANTS: Final = {
    "Reader": frozenset({"read", "deploy"}),
    "Contributor": frozenset({"read", "deploy", "write", "delete"}),
    "Owner": frozenset({"read", "deploy", "write", "delete", "manageAccess"}),
}


@dataclass(frozen=True)
class Who:
    """A matrix principal: ``role`` held at the fixture's scope of ``level`` (None: no role)."""

    name: str
    role: str | None
    level: int | None


WHO: Final = [
    *(Who(f"{role.lower()}-{LEVEL_NAMES[level]}", role, level) for role in GRANTS for level in LEVELS),
    Who("norole", None, None),
]


def may(who: Who, action: str, level: int) -> bool:
    """A role of ``who`` reaches the scope at ``level`` and allows ``action`` there."""
    return (
        who.role is not None and who.level is not None and who.level <= level and action in GRANTS[who.role]
    )


def sees(who: Who, level: int) -> bool:
    """``who`` may read at ``level``, or holds a role below it."""
    return may(who, "read", level) or (who.level is not None and who.level > level)


class Rule(enum.Enum):
    CHECK = "the action at the scope"
    ANYONE = "any known principal"
    SEES = "seeing the scope (a listing inside it)"
    FOUND = "seeing the scope, then the action (an assignment by id)"


@dataclass(frozen=True)
class Row:
    """One route: ``action`` checked at the fixture scope of ``level``; ``ok`` when allowed.

    ``route`` may hold ``{n}``, the cell's number, to name the cell's own resource; ``prepare``
    makes that resource as the admin and returns the route to call.
    """

    method: str
    route: str
    action: str | None
    level: int
    ok: int
    rule: Rule = Rule.CHECK
    body: Callable[[Cell], Any] | None = None
    prepare: Callable[[Admin, Cell], str] | None = None
    serial: bool = False
    """Cells one at a time: they change the same resource in ways that may not overlap."""

    @property
    def label(self) -> str:
        return f"{self.method} {self.route} [{self.action or 'any'} at {LEVEL_NAMES[self.level]}]"

    def expected(self, who: Who) -> int:
        if self.rule is Rule.ANYONE:
            return self.ok
        if self.rule is Rule.SEES:
            return self.ok if sees(who, self.level) else 403
        if self.rule is Rule.FOUND and not sees(who, self.level):
            return 404
        return self.ok if self.action is None or may(who, self.action, self.level) else 403


@dataclass(frozen=True)
class Cell:
    row: Row
    who: Who
    n: int

    @property
    def name(self) -> str:
        """The name of this cell's throwaway resource."""
        return f"tmp{self.n}"

    @property
    def path(self) -> str:
        return self.row.route.format(n=self.n)


@dataclass
class Admin:
    """The admin's side of the matrix: making fixtures and throwaways over HTTP."""

    client: httpx.Client
    token: str
    assignment_ids: dict[int, str] = field(default_factory=dict)
    """The id of ``grantee``'s Reader assignment at each level."""

    def must(self, method: str, route: str, body: Any = None) -> httpx.Response:
        response = send(self.client, self.token, method, route, body)
        assert response.is_success, f"admin {method} {route}: {response.status_code} {response.text}"
        return response

    def grant(self, principal: str, role: str, scope: str) -> str:
        body = {"properties": {"principalName": principal, "roleDefinitionName": role, "scope": scope}}
        return str(self.must("POST", "/roleAssignments", body).json()["id"])

    def mirror(self, cell: Cell, level: int, scope: str) -> None:
        """Give ``cell``'s principal its role at the throwaway ``scope`` if that is its level."""
        if cell.who.role is not None and cell.who.level == level:
            self.grant(cell.who.name, cell.who.role, scope)


def send(
    client: httpx.Client, token: str | None, method: str, route: str, body: Any = None
) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    if isinstance(body, bytes):
        headers["Content-Type"] = "application/octet-stream"
        return client.request(method, route, headers=headers, content=body)
    if body is not None:
        headers["Content-Type"] = "application/json"
        return client.request(method, route, headers=headers, content=json.dumps(body).encode())
    return client.request(method, route, headers=headers)


# --- bodies and throwaways ----------------------------------------------------------------

USER: Final = {"properties": {"principalType": "user"}}
DISK: Final = bytes(range(256)) * 512  # 128 KiB
PATCHED: Final = {"properties": {"description": "patched"}}
DESCRIBED: Final = {"location": LOCATION, "properties": {"description": "described"}}


def fixed(document: Any) -> Callable[[Cell], Any]:
    """A body factory that gives every cell ``document``."""
    return lambda cell: document


def new_definition(cell: Cell) -> dict[str, Any]:
    return definition_body(f"new{cell.n}")


def definition_body(sku: str, description: str = "matrix") -> dict[str, Any]:
    identifier = {"publisher": "p", "offer": "o", "sku": sku}
    return {
        "location": LOCATION,
        "properties": {"identifier": identifier, "osType": "Linux", "description": description},
    }


def version_body() -> dict[str, Any]:
    target = {"name": LOCATION, "regionalReplicaCount": 1}
    return {"properties": {"publishingProfile": {"targetRegions": [target], "excludeFromLatest": False}}}


def own_gallery(admin: Admin, cell: Cell) -> str:
    admin.must("PUT", f"/galleries/{cell.name}", {"location": LOCATION})
    admin.mirror(cell, GAL, f"/galleries/{cell.name}")
    return cell.path


def own_definition(admin: Admin, cell: Cell) -> str:
    admin.must("PUT", f"{G_PATH}/images/{cell.name}", definition_body(cell.name))
    admin.mirror(cell, DEF, f"{G_PATH}/images/{cell.name}")
    return cell.path


def own_version(admin: Admin, cell: Cell) -> str:
    """A version waiting for its disk, the route's ``{n}`` its patch number."""
    version = cell.path.removesuffix("/content")
    admin.must("PUT", version, version_body())
    admin.mirror(cell, VER, version)
    return cell.path


def own_principal(admin: Admin, cell: Cell) -> str:
    admin.must("PUT", f"/principals/{cell.name}", USER)
    return cell.path


def own_member(admin: Admin, cell: Cell) -> str:
    own_principal(admin, cell)
    admin.must("PUT", f"/principals/team/members/{cell.name}")
    return cell.path


def grantees(level: int) -> Callable[[Admin, Cell], str]:
    return lambda admin, cell: f"/roleAssignments/{admin.assignment_ids[level]}"


def own_assignment(level: int) -> Callable[[Admin, Cell], str]:
    def prepare(admin: Admin, cell: Cell) -> str:
        admin.must("PUT", f"/principals/{cell.name}", USER)
        return f"/roleAssignments/{admin.grant(cell.name, 'Reader', LINE[level]).rsplit('/', 1)[1]}"

    return prepare


def grant_body(level: int) -> Callable[[Cell], Any]:
    return lambda cell: {
        "properties": {"principalName": cell.name, "roleDefinitionName": "Reader", "scope": LINE[level]}
    }


# --- the table ----------------------------------------------------------------------------

ROWS: Final = [
    # galleries, definitions and versions: reads
    Row("GET", "/galleries", None, HOME, 200, Rule.ANYONE),
    Row("GET", G_PATH, "read", GAL, 200),
    Row("GET", f"{G_PATH}/images", "read", GAL, 200, Rule.SEES),
    Row("GET", D_PATH, "read", DEF, 200),
    Row("GET", VERSIONS, "read", DEF, 200, Rule.SEES),
    Row("GET", V_PATH, "read", VER, 200),
    Row("GET", f"{V_PATH}/content", "deploy", VER, 200),
    # galleries: writes (one that holds definitions is refused after the check: 409)
    Row("PUT", "/galleries/new{n}", "write", HOME, 201, body=fixed({"location": LOCATION})),
    Row("PUT", G_PATH, "write", GAL, 200, body=fixed(DESCRIBED)),
    Row("PATCH", G_PATH, "write", GAL, 200, body=fixed(PATCHED)),
    Row("DELETE", G_PATH, "delete", GAL, 409),
    Row("DELETE", "/galleries/tmp{n}", "delete", GAL, 204, prepare=own_gallery),
    # image definitions: writes
    Row("PUT", f"{G_PATH}/images/new{{n}}", "write", GAL, 201, body=new_definition),
    Row("PUT", D_PATH, "write", DEF, 200, body=fixed(definition_body("s"))),
    Row("PATCH", D_PATH, "write", DEF, 200, body=fixed(PATCHED)),
    Row("DELETE", D_PATH, "delete", DEF, 409),
    Row("DELETE", f"{G_PATH}/images/tmp{{n}}", "delete", DEF, 204, prepare=own_definition),
    # image versions: writes and the disk upload
    Row("PUT", f"{VERSIONS}/2.0.{{n}}", "write", DEF, 201, body=fixed(version_body())),
    Row("PUT", V_PATH, "write", VER, 200, body=fixed(version_body()), serial=True),
    Row("PATCH", V_PATH, "write", VER, 202, body=fixed(version_body()), serial=True),
    Row("DELETE", f"{VERSIONS}/3.0.{{n}}", "delete", VER, 202, prepare=own_version),
    Row("PUT", f"{VERSIONS}/4.0.{{n}}/content", "write", VER, 200, body=fixed(DISK), prepare=own_version),
    # principals and group members: reads for anyone, writes for Owner at /
    Row("GET", "/principals", None, HOME, 200, Rule.ANYONE),
    Row("GET", "/principals/grantee", None, HOME, 200, Rule.ANYONE),
    Row("PUT", "/principals/new{n}", MANAGE, HOME, 201, body=fixed(USER)),
    Row("DELETE", "/principals/tmp{n}", MANAGE, HOME, 204, prepare=own_principal),
    Row("GET", "/principals/team/members", None, HOME, 200, Rule.ANYONE),
    Row("GET", "/principals/team/members/grantee", None, HOME, 200, Rule.ANYONE),
    Row("PUT", "/principals/team/members/tmp{n}", MANAGE, HOME, 201, prepare=own_principal),
    Row("DELETE", "/principals/team/members/tmp{n}", MANAGE, HOME, 204, prepare=own_member),
    # role assignments at each level of the line
    Row("GET", "/roleAssignments", None, HOME, 200, Rule.ANYONE),
    *(Row("GET", f"/roleAssignments?scope={LINE[level]}", "read", level, 200) for level in LEVELS),
    *(
        Row("POST", "/roleAssignments", MANAGE, level, 201, body=grant_body(level), prepare=own_principal)
        for level in LEVELS
    ),
    *(
        Row("GET", "/roleAssignments/{id}", None, level, 200, Rule.FOUND, prepare=grantees(level))
        for level in LEVELS
    ),
    *(
        Row("DELETE", "/roleAssignments/{id}", MANAGE, level, 204, Rule.FOUND, prepare=own_assignment(level))
        for level in LEVELS
    ),
]  # fmt: skip


# --- running it ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    cell: Cell
    expected: int
    status: int | None
    text: str

    def line(self) -> str:
        got = "-" if self.status is None else str(self.status)
        return f"  {self.cell.who.name:<20} expected {self.expected} got {got}: {self.text[:160]}"


@dataclass
class Matrix:
    admin: Admin
    tokens: dict[str, str]

    def run(self, cell: Cell) -> Outcome:
        expected = cell.row.expected(cell.who)
        try:
            route = cell.row.prepare(self.admin, cell) if cell.row.prepare else cell.path
        except AssertionError as exc:
            return Outcome(cell, expected, None, f"preparing the cell failed: {exc}")
        body = cell.row.body(cell) if cell.row.body else None
        response = send(self.admin.client, self.tokens[cell.who.name], cell.row.method, route, body)
        return Outcome(cell, expected, response.status_code, response.text)


@pytest.fixture(scope="module")
def matrix(daemon: Daemon) -> Iterator[Matrix]:
    """The thirteen principals, each with its role, a token each; ``grantee`` with Reader at
    every level of the line (assignments to find by id) and in the group ``team``."""
    with httpx.Client(base_url=daemon.url, timeout=60, limits=httpx.Limits(max_connections=16)) as client:
        admin = Admin(client, daemon.tokens["admin"])
        for who in WHO:
            admin.must("PUT", f"/principals/{who.name}", USER)
            if who.role is not None and who.level is not None:
                admin.grant(who.name, who.role, LINE[who.level])
        admin.must("PUT", "/principals/grantee", USER)
        admin.must("PUT", "/principals/team", {"properties": {"principalType": "group"}})
        admin.must("PUT", "/principals/team/members/grantee")
        for level in LEVELS:
            admin.assignment_ids[level] = admin.grant("grantee", "Reader", LINE[level]).rsplit("/", 1)[1]

        def token(name: str) -> str:
            result = blobrep("token", "create", "--principal", name, cwd=daemon.cwd)
            assert result.returncode == 0, result.stderr
            return str(json.loads(result.stdout)["token"])

        with ThreadPoolExecutor(4) as pool:
            tokens = dict(
                zip([who.name for who in WHO], pool.map(token, [who.name for who in WHO]), strict=True)
            )
        yield Matrix(admin, tokens)


def test_the_matrix_covers_every_role_at_every_level() -> None:
    assert len(WHO) == 13 and len({who.name for who in WHO}) == 13
    assert {(who.role, who.level) for who in WHO if who.role} == {(r, lv) for r in GRANTS for lv in LEVELS}
    assert len({row.label for row in ROWS}) == len(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[row.label for row in ROWS])
def test_each_principal_gets_the_status_its_role_calls_for(matrix: Matrix, row: Row) -> None:
    number = ROWS.index(row) * 100
    cells = [Cell(row, who, number + index) for index, who in enumerate(WHO)]
    with ThreadPoolExecutor(1 if row.serial else 8) as pool:
        outcomes = list(pool.map(matrix.run, cells))
    wrong = [outcome for outcome in outcomes if outcome.status != outcome.expected]
    assert not wrong, f"{row.label}: {len(wrong)} of {len(outcomes)} cells differ\n" + "\n".join(
        outcome.line() for outcome in wrong
    )
    for outcome in outcomes:
        if outcome.status == 403:
            assert json.loads(outcome.text)["error"]["code"] == "AuthorizationFailed"


@pytest.mark.parametrize("row", ROWS, ids=[row.label for row in ROWS])
def test_each_route_refuses_a_request_without_a_token(matrix: Matrix, row: Row) -> None:
    try:
        route = row.route.format(n=0)
    except KeyError:  # an assignment's id: any will do, the token is looked at first
        route = row.route.split("{")[0] + str(uuid.UUID(int=0))
    body = row.body(Cell(row, WHO[-1], 0)) if row.body else None
    response = send(matrix.admin.client, None, row.method, route, body)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "AuthenticationFailed"
