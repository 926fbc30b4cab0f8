"""Failures a daemon answers turn back into errors the CLI reports with the same line and the
same exit status as the same failure on a local home."""

from __future__ import annotations

import contextlib
import inspect
import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blobrep import errors
from blobrep.cli.main import _report
from blobrep.client.errors import EndpointError, error_from_body
from blobrep.daemon.bodies import BodyTooLargeError
from blobrep.daemon.http import failure
from blobrep.errors import BlobrepError

#: Every error class a service call can raise, the daemon's own included.
KINDS = [
    kind
    for _, kind in inspect.getmembers(errors, inspect.isclass)
    if issubclass(kind, BlobrepError) and kind.__module__ == errors.__name__
] + [BodyTooLargeError]
SPECIAL = {"ChunkMissingError", "ChunkCorruptError", "DamagedObjectError"}

#: Messages as services write them: words with single spaces, perhaps over several lines
#: (the daemon and the CLI both put those on one line).
messages = st.lists(
    st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp")), min_size=1, max_size=12),
    min_size=1,
    max_size=8,
).flatmap(lambda words: st.sampled_from([" ".join(words), "\n".join(words)]))


def _make(kind: type[BlobrepError], message: str) -> BlobrepError:
    if kind.__name__ == "ChunkMissingError":
        return kind(message, "eastus/replica-1")
    if kind.__name__ in SPECIAL:
        return kind(message, "eastus/replica-1", "why")
    return kind(message)


def _reported(exc: BaseException) -> tuple[int, str]:
    """The exit status and the stderr line of a command that ended with ``exc``."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = _report(exc)
    return code, stderr.getvalue()


def _served(exc: BlobrepError) -> BlobrepError:
    """What the client raises for the answer the daemon gives when a call raised ``exc``."""
    response = failure(exc)
    return error_from_body(response.status_code, bytes(response.body), "GET http://daemon/x")


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.__name__)
@settings(max_examples=25)
@given(message=messages)
def test_every_error_reads_back_to_the_same_line_and_exit_status(
    kind: type[BlobrepError], message: str
) -> None:
    original = _make(kind, message)
    assert _reported(_served(original)) == _reported(original)


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        (errors.ResourceNotFoundError("gallery 'g' not found"), errors.ResourceNotFoundError),
        (errors.AlreadyExistsError("gallery 'g' already exists"), errors.AlreadyExistsError),
        (errors.PreconditionError("gallery 'g' still holds definitions"), errors.PreconditionError),
        (errors.UnavailableError("not Completed in eastus"), errors.UnavailableError),
        (errors.AccessDeniedError("principal 'bob' may not read /"), errors.AccessDeniedError),
        (errors.UnauthenticatedError("invalid token"), errors.UnauthenticatedError),
        (errors.BusyError("held by gc"), errors.BusyError),
        (errors.LockedError("catalog locked"), errors.BusyError),
        (errors.InvalidNameError("bad name"), errors.InvalidInputError),
        (errors.StorageFullError("disk full"), errors.StorageFullError),
        (errors.ChunkCorruptError("d", "r", "why"), errors.IntegrityError),
    ],
)
def test_each_kind_of_failure_comes_back_as_its_kind(original: BlobrepError, expected: type) -> None:
    assert isinstance(_served(original), expected)


@pytest.mark.parametrize(
    ("status", "body", "said"),
    [
        (404, b'{"error": {"code": "NotFound", "message": "no route /x"}}', "does not serve this API"),
        (405, b'{"error": {"code": "MethodNotAllowed", "message": "PUT is not allowed"}}', "upgrade"),
        (502, b"<html><body>Bad Gateway</body></html>", "answered 502: <html><body>Bad Gateway"),
        (500, b"Internal Server Error", "answered 500: Internal Server Error"),
        (418, b'{"error": "teapot"}', "answered 418"),
    ],
)
def test_an_answer_outside_the_api_is_an_endpoint_error(status: int, body: bytes, said: str) -> None:
    error = error_from_body(status, body, "GET http://daemon/x")
    assert isinstance(error, EndpointError) and said in str(error)
    assert "GET http://daemon/x" in str(error)


def test_a_long_foreign_body_is_quoted_short() -> None:
    error = error_from_body(502, b"x" * 10_000, "GET http://daemon/x")
    assert len(str(error)) < 300 and str(error).endswith("...")


def test_an_error_body_without_a_message_is_not_taken_for_one() -> None:
    body = json.dumps({"error": {"code": "ResourceNotFound"}}).encode()
    assert isinstance(error_from_body(404, body, "GET http://daemon/x"), EndpointError)
