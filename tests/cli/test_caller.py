"""Who the command acts as: ``--as`` or ``BLOBREP_AS``, the admin only when neither is set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.helpers import assert_one_line_error, blobrep


def ok(cwd: Path, *args: str | Path) -> str:
    result = blobrep(*args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout


def galleries(cwd: Path) -> list[str]:
    return [gallery["name"] for gallery in json.loads(ok(cwd, "sig", "list"))]


@pytest.mark.parametrize("value", ["", " "])
def test_an_empty_as_is_refused_instead_of_acting_as_the_admin(tmp_path: Path, value: str) -> None:
    result = blobrep("--as", value, "sig", "create", "--gallery-name", "gal", cwd=tmp_path)
    assert_one_line_error(
        result, 2, "the calling principal is empty", "--as", "name a user or service principal"
    )
    assert galleries(tmp_path) == []


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_blobrep_as_is_refused_and_only_an_unset_one_means_the_admin(
    tmp_path: Path, value: str
) -> None:
    create = ("sig", "create", "--gallery-name", "gal")
    result = blobrep(*create, cwd=tmp_path, env={"BLOBREP_AS": value})
    assert_one_line_error(result, 2, "the calling principal is empty", "BLOBREP_AS", "unset it")
    assert galleries(tmp_path) == []
    ok(tmp_path, *create)  # BLOBREP_AS unset: the bootstrap admin
    assert galleries(tmp_path) == ["gal"]


def test_an_empty_as_is_refused_even_when_blobrep_as_names_someone(tmp_path: Path) -> None:
    result = blobrep("--as", "", "sig", "list", cwd=tmp_path, env={"BLOBREP_AS": "admin"})
    assert_one_line_error(result, 2, "the calling principal is empty (--as '')")


def test_a_group_cannot_be_the_caller(tmp_path: Path) -> None:
    ok(tmp_path, "principal", "create", "--name", "ops", "--type", "group")
    ok(tmp_path, "role", "assignment", "create", "--assignee", "ops", "--role", "Owner", "--scope", "/")
    is_a_group = "'ops' is a group; groups hold roles for their members but cannot act"
    by_option = blobrep("--as", "ops", "sig", "create", "--gallery-name", "gal", cwd=tmp_path)
    assert_one_line_error(by_option, 1, is_a_group, "act as a user or service principal")
    by_variable = blobrep("sig", "create", "--gallery-name", "gal", cwd=tmp_path, env={"BLOBREP_AS": "ops"})
    assert_one_line_error(by_variable, 1, is_a_group)
    listing = blobrep("--as", "ops", "sig", "list", cwd=tmp_path)
    assert_one_line_error(listing, 1, is_a_group)
    assert galleries(tmp_path) == []
