"""``blobrep token create|list|revoke``: what is printed (the token once), exit statuses, and
tokens made beside a service that has the home open, as a daemon would."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

from blobrep.errors import UnauthenticatedError
from blobrep.service import GalleryService
from tests.cli.helpers import assert_one_line_error, blobrep

TOKEN_RE = re.compile(r"brp_tok_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")
ID_RE = re.compile(r"tok_[0-9a-f]{12}")
TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def ok(cwd: Path, *args: str) -> str:
    result = blobrep(*args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def as_json(cwd: Path, *args: str) -> Any:
    return json.loads(ok(cwd, *args))


def when(text: str) -> datetime:
    assert TIME_RE.fullmatch(text), text
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home (``./.blobrep``) with a user ``alice``, a service principal ``robot`` and a group ``ops``."""
    for name, kind in (("alice", "user"), ("robot", "servicePrincipal"), ("ops", "group")):
        ok(tmp_path, "principal", "create", "--name", name, "--type", kind)
    return tmp_path


def test_create_prints_the_token_once_as_json(home: Path) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    created = as_json(home, "token", "create", "--principal", "robot")
    assert list(created) == ["id", "token", "principal", "expires"]
    assert ID_RE.fullmatch(created["id"]) and TOKEN_RE.fullmatch(created["token"])
    assert created["token"].startswith(f"brp_{created['id']}_")
    assert created["principal"] == "robot"
    expires = when(created["expires"])
    assert before + timedelta(days=30) <= expires <= datetime.now(UTC) + timedelta(days=30)
    for args in (("token", "list"), ("-o", "table", "token", "list"), ("token", "list", "-p", "robot")):
        listed = ok(home, *args)
        assert created["id"] in listed
        assert created["token"] not in listed and created["token"][-43:] not in listed


def test_create_prints_a_table_with_the_same_columns(home: Path) -> None:
    lines = ok(home, "-o", "table", "token", "create", "-p", "alice", "--expires", "12h").splitlines()
    assert lines[0].split() == ["id", "token", "principal", "expires"]
    assert len(lines) == 3
    token_id, token, principal, expires = lines[2].split()
    assert ID_RE.fullmatch(token_id) and TOKEN_RE.fullmatch(token) and principal == "alice"
    assert timedelta(hours=11, minutes=59) < when(expires) - datetime.now(UTC) <= timedelta(hours=12)


def test_list_shows_every_field_but_the_secret(home: Path) -> None:
    first = as_json(home, "token", "create", "-p", "robot", "--expires", "1h")
    second = as_json(home, "token", "create", "-p", "alice", "--expires", "2d")
    listed = as_json(home, "token", "list")
    assert [item["id"] for item in listed] == [second["id"], first["id"]], "by principal"
    for item, made in zip(listed, (second, first), strict=True):
        assert list(item) == ["id", "principal", "state", "created", "expires", "revoked"]
        assert item["principal"] == made["principal"] and item["expires"] == made["expires"]
        assert item["state"] == "Active" and item["revoked"] is None
        assert when(item["created"]) < when(item["expires"])
    table = ok(home, "-o", "table", "token", "list").splitlines()
    assert table[0].split() == ["id", "principal", "state", "created", "expires", "revoked"]
    assert as_json(home, "token", "list", "--principal", "alice") == [listed[0]]
    assert as_json(home, "--as", "alice", "token", "list") == [listed[0]], "a principal lists its own"


def test_revoke_shows_the_revoked_token_and_twice_is_fine(home: Path) -> None:
    created = as_json(home, "token", "create", "-p", "robot")
    revoked = as_json(home, "--as", "robot", "token", "revoke", created["id"])
    assert revoked["id"] == created["id"] and revoked["state"] == "Revoked"
    assert revoked["revoked"] is not None and "token" not in revoked
    again = as_json(home, "token", "revoke", created["token"])  # by the token itself, as leaked
    assert again == revoked
    assert as_json(home, "token", "list") == [revoked]


def test_revoking_an_unknown_id_fails_and_a_non_id_is_a_usage_error(home: Path) -> None:
    assert_one_line_error(
        blobrep("token", "revoke", "tok_000000000000", cwd=home), 1, "token tok_000000000000 not found"
    )
    assert_one_line_error(blobrep("token", "revoke", "robot", cwd=home), 2, "not a token id")


@pytest.mark.parametrize("expires", ["0", "0s", "-1", "-5d", "nan", "inf", "3651d", "1e3", "soon", ""])
def test_an_expiry_that_is_no_lifetime_exits_2_and_makes_nothing(home: Path, expires: str) -> None:
    result = blobrep("token", "create", "--principal", "robot", f"--expires={expires}", cwd=home)
    assert_one_line_error(result, 2, "argument --expires", "3650d")
    assert as_json(home, "token", "list") == []


def test_the_longest_and_shortest_lifetimes_are_accepted(home: Path) -> None:
    longest = as_json(home, "token", "create", "-p", "robot", "--expires", "3650d")
    assert when(longest["expires"]) - datetime.now(UTC) > timedelta(days=3649)
    shortest = as_json(home, "token", "create", "-p", "robot", "--expires", "1s")
    assert when(shortest["expires"]) - datetime.now(UTC) <= timedelta(seconds=1)


def test_access_denied_exits_1_and_makes_or_revokes_nothing(home: Path) -> None:
    denied = "principal 'robot' may not manage access at /"
    result = blobrep("--as", "robot", "token", "create", "--principal", "alice", cwd=home)
    assert_one_line_error(result, 1, denied)
    result = blobrep("--as", "robot", "token", "list", "--principal", "alice", cwd=home)
    assert_one_line_error(result, 1, denied)
    alices = as_json(home, "--as", "alice", "token", "create", "--principal", "alice")
    result = blobrep("--as", "robot", "token", "revoke", alices["id"], cwd=home)
    assert_one_line_error(result, 1, f"'robot' holds no token {alices['id']}", denied)
    assert [item["state"] for item in as_json(home, "token", "list")] == ["Active"]
    assert as_json(home, "--as", "robot", "token", "list") == []


def test_a_group_gets_no_token(home: Path) -> None:
    result = blobrep("token", "create", "--principal", "ops", cwd=home)
    assert_one_line_error(result, 2, "principal 'ops' is a group", "hold no tokens")
    result = blobrep("--as", "ops", "token", "create", "--principal", "ops", cwd=home)
    assert_one_line_error(result, 1, "'ops' is a group")
    result = blobrep("token", "create", "--principal", "nobody", cwd=home)
    assert_one_line_error(result, 1, "principal 'nobody' not found")
    assert as_json(home, "token", "list") == []


async def test_tokens_made_and_revoked_beside_an_open_service_work_at_once(home: Path) -> None:
    """The daemon keeps the home open; ``blobrep token`` changes only the catalog beside it."""
    run = partial(blobrep, cwd=home)
    async with await GalleryService.open(home / ".blobrep") as service:
        made = await anyio.to_thread.run_sync(run, "token", "create", "--principal", "robot")
        assert made.returncode == 0, made.stderr
        created = json.loads(made.stdout)
        assert await service.authenticate(created["token"]) == "robot"
        revoked = await anyio.to_thread.run_sync(run, "token", "revoke", created["id"])
        assert revoked.returncode == 0, revoked.stderr
        with pytest.raises(UnauthenticatedError, match="was revoked"):
            await service.authenticate(created["token"])
