"""Schema-driven fuzzing of the daemon, in process: every answer matches ``/openapi.json``.

Schemathesis generates requests for every documented operation from the document itself (its
examples, boundary cases, then random valid and invalid input), sends them to the ASGI
application over a home prepared here, and checks each answer: no server error, a documented
status, and the documented content type, headers and body. The document's path examples
(``gallery1``, ``ubuntu``, ``1.0.0``, ``alice``, ...) name resources of this home, so its
examples reach real resources rather than 404s; deletions run last, so that every other
operation still finds them.

Blob endpoints are capped: the published disk is 4 KiB, so no read moves more, and an upload's
generated body is cut to :data:`UPLOAD_CAP` bytes before it is sent.

Malformed input is checked apart, and driven by the document too: in every JSON request body, an
unknown field in any object the document closes, or a value of another JSON type at any field it
types, is a 400 naming the field, as are bodies that are not one JSON object and bad paging
parameters.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, cast

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.transport.serialization import Binary
from starlette.applications import Starlette

from blobrep.daemon import openapi
from blobrep.daemon.app import create_app
from blobrep.service import SyntheticImage
from tests.daemon.conftest import ok

JSON = dict[str, Any]
Case = schemathesis.Case[Any]

DOCUMENT: Final = openapi.document()
SCHEMA: Final = schemathesis.openapi.from_dict(DOCUMENT)
CHECKS: Final = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
#: Examples per operation and phase: enough to reach every documented status, few enough that
#: the whole file runs in well under a minute on two cores.
FUZZ: Final = settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
#: The most bytes a generated upload body may carry.
UPLOAD_CAP: Final = 4096
DISK_SIZE: Final = 4096


def example(name: str) -> str:
    """The example value of the document's path parameter ``name``."""
    value: str = DOCUMENT["components"]["parameters"][name]["example"]
    return value


GALLERY: Final = f"/galleries/{example('gallery')}"
DEFINITION: Final = f"{GALLERY}/images/{example('image')}"
VERSION: Final = f"{DEFINITION}/versions/{example('version')}"
WAITING: Final = f"{DEFINITION}/versions/{example('versionNumber')}"


def client_of(app: Starlette) -> asgi.ASGIClient:
    """A client that calls ``app`` in process, under the lifespan every such client shares."""
    return asgi.get_client(cast("asgi.ASGIApp", app))


@dataclass(frozen=True)
class Fuzzed:
    """The application under its lifespan, and an admin token for it."""

    app: Starlette
    token: str
    operations: tuple[str, ...]
    """The operations the home's version writes started: one over, one still waiting."""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """A home holding what the document's examples name, made through the API itself: the
    gallery, its definition, version 1.0.0 with a 4 KiB disk (described, then uploaded), a
    version described but still waiting for its disk (the upload example), principals ``alice``
    and ``bob``, the group ``operators`` with its member ``bob``, who is Reader on the gallery;
    the application over it under its lifespan, and an admin token."""
    cwd = tmp_path_factory.mktemp("fuzz")
    token = json.loads(ok(cwd, "token", "create", "--principal", "admin"))["token"]
    app = create_app(cwd / ".blobrep", reconcile_interval=None)
    identifier = {"publisher": "p", "offer": "o", "sku": "s"}
    principals = (("principal", "user"), ("member", "user"), ("group", "group"))
    grant = {"principalName": example("member"), "roleDefinitionName": "Reader", "scope": GALLERY}
    try:
        with client_of(app) as client:
            client.headers["Authorization"] = f"Bearer {token}"
            made = [
                client.put(GALLERY, json={"location": "westcentralus"}),
                client.put(DEFINITION, json={"properties": {"identifier": identifier, "osType": "Linux"}}),
                client.put(VERSION, json={}),
                client.put(f"{VERSION}/content", data=b"".join(SyntheticImage(DISK_SIZE, seed=3).blocks())),
                client.put(WAITING, json={}),
                *(
                    client.put(f"/principals/{example(name)}", json={"properties": {"principalType": kind}})
                    for name, kind in principals
                ),
                client.put(f"/principals/{example('group')}/members/{example('member')}"),
                client.post("/roleAssignments", json={"properties": grant}),
            ]
            for response in made:
                request = response.request
                assert response.status_code in (200, 201), (request.method, request.url, response.text)
            started = (made[2], made[4])
        yield Fuzzed(app, token, tuple(r.headers["Azure-AsyncOperation"].rsplit("/", 1)[1] for r in started))
    finally:
        asgi.shutdown_lifespans()


def capped(case: Case) -> None:
    """Cut a generated upload body to :data:`UPLOAD_CAP` bytes."""
    if isinstance(case.body, Binary):
        case.body = Binary(case.body.data[:UPLOAD_CAP])
    elif isinstance(case.body, bytes | str) and case.path.endswith("/content"):
        case.body = case.body[:UPLOAD_CAP]


def fuzz(case: Case, fuzzed: Fuzzed) -> None:
    capped(case)
    case.call_and_validate(app=fuzzed.app, headers=fuzzed.headers, checks=CHECKS)


def directed(fuzzed: Fuzzed) -> list[tuple[str, str, JSON, int]]:
    """Requests random generation is unlikely to make, and the status each must get: the home's
    operations (their ids are drawn at random), a range past the end of the disk, an
    assignment made and made again."""
    done, waiting = fuzzed.operations
    grant = {
        "properties": {
            "principalName": example("principal"),
            "roleDefinitionName": "Reader",
            "scope": GALLERY,
        }
    }
    content = "/galleries/{gallery}/images/{image}/versions/{version}/content"
    version = {"gallery": example("gallery"), "image": example("image"), "version": example("version")}
    past = {"Range": f"bytes={DISK_SIZE}-"}
    return [
        ("/operations/{operation}", "GET", {"path_parameters": {"operation": done}}, 200),
        ("/operations/{operation}/result", "GET", {"path_parameters": {"operation": done}}, 200),
        ("/operations/{operation}", "GET", {"path_parameters": {"operation": waiting}}, 200),
        ("/operations/{operation}/result", "GET", {"path_parameters": {"operation": waiting}}, 202),
        (content, "GET", {"path_parameters": version, "headers": past}, 416),
        (content, "HEAD", {"path_parameters": version, "headers": past}, 416),
        (content, "GET", {"path_parameters": version, "headers": {"Range": "bytes=-100"}}, 206),
        ("/roleAssignments", "POST", {"body": grant, "media_type": "application/json"}, 201),
        ("/roleAssignments", "POST", {"body": grant, "media_type": "application/json"}, 200),
    ]


def test_answers_fuzzing_seldom_reaches_match_the_document(fuzzed: Fuzzed) -> None:
    """Asked before any fuzzed write changes what they read."""
    for path, method, given_data, status in directed(fuzzed):
        case = SCHEMA[path][method].Case(**given_data)
        response = case.call_and_validate(app=fuzzed.app, headers=fuzzed.headers, checks=CHECKS)
        assert response.status_code == status, (method, path, given_data, response.text)


@SCHEMA.exclude(method="DELETE").parametrize()
@FUZZ
def test_every_answer_matches_the_document(case: Case, fuzzed: Fuzzed) -> None:
    fuzz(case, fuzzed)


# --- malformed input --------------------------------------------------------------------------

JSON_TYPES: Final = {
    "string": st.text(max_size=8),
    "integer": st.integers(),
    "number": st.floats(allow_nan=False, allow_infinity=False),
    "boolean": st.booleans(),
    "object": st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
    "array": st.lists(st.integers(), max_size=2),
}


@dataclass(frozen=True)
class Place:
    """A place in a request body: the keys (and list indexes) that lead to it, the schemas of
    the objects and lists on the way, and its own schema."""

    path: tuple[str | int, ...]
    trail: tuple[JSON, ...]
    schema: JSON

    @property
    def name(self) -> str:
        return next(str(key) for key in reversed(("the body", *self.path)) if isinstance(key, str))

    @property
    def closed(self) -> bool:
        """The daemon refuses a field here that the document does not name."""
        return self.schema.get("additionalProperties") is False or self.schema.get("maxProperties") == 0

    def holding(self, value: Any) -> Any:
        """The smallest body with ``value`` at this place: the fields each object on the way
        requires are there, so the one mistake is ``value``."""
        for key, outer in reversed(list(zip(self.path, self.trail, strict=True))):
            if isinstance(key, int):
                value = [value]
                continue
            required = {name: valid(outer["properties"][name]) for name in outer.get("required", [])}
            value = {**required, key: value}
        return value


def valid(schema: JSON) -> Any:
    """A value ``schema`` takes (its first example or choice where it has one)."""
    schema = resolve(schema)
    for listed in (schema.get("examples"), schema.get("enum")):
        if listed:
            return listed[0]
    kinds = typed(schema) or {"string"}
    samples: JSON = {"string": "x", "integer": 1, "boolean": True, "object": {}, "array": []}
    kind = next(kind for kind in ("object", "string", "integer", "boolean", "array") if kind in kinds)
    if kind == "object":
        return {name: valid(schema["properties"][name]) for name in schema.get("required", [])}
    return samples[kind]


def resolve(schema: JSON) -> JSON:
    """``schema`` with its reference followed and a null alternative dropped."""
    if "$ref" in schema:
        schema = DOCUMENT["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    options = [option for option in schema.get("anyOf", []) if option.get("type") != "null"]
    return resolve(options[0]) if len(options) == 1 else schema


def places(schema: JSON, path: tuple[str | int, ...] = (), trail: tuple[JSON, ...] = ()) -> Iterator[Place]:
    schema = resolve(schema)
    yield Place(path, trail, schema)
    for key, field in schema.get("properties", {}).items():
        yield from places(field, (*path, key), (*trail, schema))
    if "items" in schema:
        yield from places(schema["items"], (*path, 0), (*trail, schema))


def typed(schema: JSON) -> set[str]:
    """The JSON types a field's schema allows (null aside); empty for a field of any type."""
    kinds = schema.get("type", [])
    allowed = {kinds} if isinstance(kinds, str) else set(kinds)
    if "enum" in schema or "const" in schema:
        allowed.add("string")
    return allowed - {"null"}


def example_path(template: str, operation: JSON) -> str:
    """``template`` with each path parameter the operation declares replaced by its example."""
    for entry in operation.get("parameters", []):
        parameter = DOCUMENT["components"]["parameters"][entry["$ref"].rsplit("/", 1)[1]]
        if parameter["in"] == "path":
            template = template.replace("{" + parameter["name"] + "}", parameter["example"])
    return template


def json_bodies() -> list[tuple[str, str, str]]:
    """(method, example path, body schema) of every operation that reads a JSON body."""
    return [
        (method.upper(), example_path(template, operation), content["application/json"]["schema"]["$ref"])
        for template, item in DOCUMENT["paths"].items()
        for method, operation in item.items()
        if "application/json" in (content := operation.get("requestBody", {}).get("content", {}))
    ]


#: Each (method, path, place in its body) where the document closes an object or types a field.
MISTAKES: Final = [
    (method, path, place)
    for method, path, body in json_bodies()
    for place in places({"$ref": body})
    if place.closed or (place.path and typed(place.schema))
]


def assert_bad_request(response: Any, *fragments: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == "InvalidParameter", body
    for fragment in fragments:
        assert fragment in body["error"]["message"], (fragment, body)


@pytest.fixture(scope="module")
def client(fuzzed: Fuzzed) -> Iterator[Any]:
    with client_of(fuzzed.app) as session:
        session.headers.update(fuzzed.headers)
        yield session


@st.composite
def mistaken(draw: st.DrawFn) -> tuple[str, str, Any, str]:
    """A request whose JSON body has one mistake, and what the answer must name."""
    method, path, place = draw(st.sampled_from(MISTAKES))
    wrong = sorted(set(JSON_TYPES) - typed(place.schema))
    if place.closed and (not place.path or not typed(place.schema) or draw(st.booleans())):
        known = set(place.schema.get("properties", {}))
        key = draw(st.text(min_size=1, max_size=8).filter(lambda key: key not in known))
        # An object that takes no field at all is named itself; another names the stray key.
        named = place.name if place.schema.get("maxProperties") == 0 else repr(key)
        return method, path, place.holding({key: draw(JSON_TYPES["integer"])}), named
    return method, path, place.holding(draw(st.one_of(*(JSON_TYPES[kind] for kind in wrong)))), place.name


@given(mistaken())
@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
def test_a_body_with_an_unknown_field_or_a_wrong_type_is_a_400_naming_it(
    client: Any, mistake: tuple[str, str, Any, str]
) -> None:
    method, path, body, named = mistake
    assert_bad_request(client.request(method, path, json=body), named)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1]", "not an object"),
        (b'"gallery"', "not an object"),
        (b'{"location": "a", "location": "b"}', "twice"),
    ],
)
@pytest.mark.parametrize(("method", "path"), [(method, path) for method, path, _ in json_bodies()])
def test_a_body_that_is_not_one_json_object_is_a_400(
    client: Any, method: str, path: str, body: bytes, fragment: str
) -> None:
    headers = {"Content-Type": "application/json"}
    assert_bad_request(client.request(method, path, data=body, headers=headers), fragment)


LISTS: Final = [
    example_path(path, item["get"])
    for path, item in DOCUMENT["paths"].items()
    if {"$ref": "#/components/parameters/top"} in item.get("get", {}).get("parameters", [])
]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ({"$top": "0"}, "$top"),
        ({"$top": "1001"}, "$top"),
        ({"$top": "-1"}, "$top"),
        ({"$top": "ten"}, "$top"),
        ({"$top": "1.5"}, "$top"),
        ({"$skipToken": "next"}, "$skipToken"),
        ({"$skipToken": "99999"}, "$skipToken"),
    ],
)
def test_bad_paging_parameters_are_a_400(
    client: Any, path: str, query: dict[str, str], fragment: str
) -> None:
    assert_bad_request(client.get(path, params=query), fragment)


def test_an_unknown_expansion_is_a_400(client: Any) -> None:
    assert_bad_request(client.get(VERSION, params={"$expand": "Everything"}), "$expand")


# --- deletions, last ------------------------------------------------------------------------


@SCHEMA.include(method="DELETE").parametrize()
@FUZZ
def test_every_deletion_answers_as_the_document_says(case: Case, fuzzed: Fuzzed) -> None:
    fuzz(case, fuzzed)
