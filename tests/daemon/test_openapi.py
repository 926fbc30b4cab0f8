"""``/openapi.json``: a valid OpenAPI 3.1 document that names every route of the daemon, and only
those, with the methods each takes and the token each needs."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator
from starlette.routing import BaseRoute, Route

from blobrep.daemon import openapi
from blobrep.daemon.app import create_app
from tests.daemon.conftest import start, stop

METHODS = {"get", "put", "post", "patch", "delete", "head"}
PUBLIC = {"/livez", "/readyz", "/metrics", "/openapi.json"}

Operations = set[tuple[str, str]]


def served(routes: Iterable[BaseRoute]) -> Operations:
    """The (path template, method) pairs ``routes`` answer (the ``HEAD`` beside every ``GET``
    included: the daemon answers it, so the document says so)."""
    found: Operations = set()
    for route in routes:
        assert isinstance(route, Route), f"{route!r} is not a plain route: document what it serves"
        found |= {(route.path, method.lower()) for method in route.methods or ()}
    return found


def documented(document: dict[str, Any]) -> Operations:
    return {
        (path, method) for path, item in document["paths"].items() for method in item if method in METHODS
    }


def undocumented(routes: Iterable[BaseRoute], document: dict[str, Any]) -> tuple[Operations, Operations]:
    """What the routes serve that the document lacks, and what it documents that no route serves."""
    answered, paper = served(routes), documented(document)
    return answered - paper, paper - answered


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi.document()


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1.")
    errors = [error.message for error in OpenAPIV31SpecValidator(document).iter_errors()]
    assert errors == []


def test_every_route_is_documented_with_its_methods_and_nothing_else_is(
    document: dict[str, Any], tmp_path: Path
) -> None:
    app = create_app(tmp_path / ".blobrep", reconcile_interval=None)
    assert undocumented(app.routes, document) == (set(), set())
    # A route added later without its documentation is caught, as is a method it lost.
    later = Route("/galleries/{gallery}/snapshots", lambda request: None, methods=["GET", "POST"])
    missing, _ = undocumented([*app.routes, later], document)
    assert missing == {("/galleries/{gallery}/snapshots", method) for method in ("get", "head", "post")}
    lost = [route for route in app.routes if getattr(route, "path", None) != "/roleAssignments"]
    assert undocumented(lost, document)[1] == {
        ("/roleAssignments", method) for method in ("get", "head", "post")
    }


def declared(document: dict[str, Any], operation: dict[str, Any]) -> list[dict[str, Any]]:
    """The parameters ``operation`` names, resolved from the document's components."""
    parameters = document["components"]["parameters"]
    return [parameters[entry["$ref"].rsplit("/", 1)[1]] for entry in operation.get("parameters", [])]


def test_each_documented_operation_declares_its_path_parameters_and_answers(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        in_template = set(re.findall(r"{(\w+)}", path))
        for method, operation in item.items():
            names = {
                parameter["name"] for parameter in declared(document, operation) if parameter["in"] == "path"
            }
            assert names == in_template, (method, path)
            statuses = set(operation["responses"])
            assert any(status.startswith("2") for status in statuses), (method, path)
            if path not in PUBLIC:
                assert {"401", "403"} <= statuses, (method, path)
                assert "security" not in operation, (method, path)


def example_path(document: dict[str, Any], path: str, operation: dict[str, Any]) -> str:
    for parameter in declared(document, operation):
        if parameter["in"] == "path":
            path = path.replace("{" + parameter["name"] + "}", parameter["example"])
    return path


def every_operation(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_a_real_daemon_serves_the_document_without_a_token_and_asks_one_where_it_says(
    document: dict[str, Any], tmp_path: Path
) -> None:
    url, process = start(tmp_path, tmp_path / ".blobrep")
    try:
        response = httpx.get(f"{url}/openapi.json", timeout=30)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json() == document
        for path, method, operation in every_operation(document):
            answer = httpx.request(method.upper(), url + example_path(document, path, operation), timeout=30)
            if operation.get("security") == []:
                assert answer.status_code == 200, (method, path, answer.text)
            else:
                assert answer.status_code == 401, (method, path, answer.text)
                assert answer.headers["WWW-Authenticate"] == 'Bearer realm="blobrep"'
            assert str(answer.status_code) in operation["responses"], (method, path)
    finally:
        code, err = stop(process)
        assert code == 0, err
