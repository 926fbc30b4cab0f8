"""Bearer tokens through the service: who may make, list and revoke them, and what
``authenticate`` (the daemon's one call per request) accepts."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path

import pytest

from blobrep.errors import (
    AccessDeniedError,
    InvalidNameError,
    InvalidParameterError,
    ResourceNotFoundError,
    UnauthenticatedError,
)
from blobrep.service import GalleryService
from tests.service.conftest import ADMIN, GALLERY

OWNER_AT_HOME = r"may not manage access at /: it holds no role there; Owner at that scope or above is needed"


@pytest.fixture
async def people(service: GalleryService) -> GalleryService:
    """``alice`` (user), ``robot`` (service principal) and ``ops`` (group), none with a role."""
    await service.create_principal(ADMIN, "alice", "user")
    await service.create_principal(ADMIN, "robot", "servicePrincipal")
    await service.create_principal(ADMIN, "ops", "group")
    return service


# --- making tokens and using them -------------------------------------------------------------------


async def test_a_token_authenticates_its_principal(people: GalleryService) -> None:
    issued = await people.create_token(ADMIN, "robot")
    assert issued.token.principal == "robot"
    assert issued.text.startswith(f"brp_{issued.token.id}_")
    assert issued.token.expires - issued.token.created == timedelta(days=30)
    assert await people.authenticate(issued.text) == "robot"
    assert await people.authenticate(issued.text) == "robot", "a token is not used up"
    other = await people.create_token(ADMIN, "robot")
    assert other.token.id != issued.token.id and other.text != issued.text


async def test_users_and_service_principals_make_their_own_tokens_without_any_role(
    people: GalleryService,
) -> None:
    for name in ("alice", "robot"):
        issued = await people.create_token(name, name, lifetime=3600)
        assert await people.authenticate(issued.text) == name
        assert issued.token.expires - issued.token.created == timedelta(hours=1)


async def test_a_token_for_another_principal_needs_owner_at_home(people: GalleryService) -> None:
    with pytest.raises(AccessDeniedError, match=rf"principal 'alice' {OWNER_AT_HOME}"):
        await people.create_token("alice", "robot")
    with pytest.raises(AccessDeniedError, match=rf"principal 'alice' {OWNER_AT_HOME}"):
        await people.create_token("alice", ADMIN)
    # The same words for a principal that does not exist: names cannot be probed this way.
    with pytest.raises(AccessDeniedError, match=rf"principal 'alice' {OWNER_AT_HOME}"):
        await people.create_token("alice", "nobody")
    await people.create_gallery(ADMIN, GALLERY, location="westcentralus")
    await people.create_assignment(ADMIN, "alice", "Owner", f"/galleries/{GALLERY}")
    with pytest.raises(AccessDeniedError, match="Owner at that scope or above"):
        await people.create_token("alice", "robot")
    assert await people.list_tokens(ADMIN) == []
    await people.create_assignment(ADMIN, "alice", "Owner", "/")
    issued = await people.create_token("alice", "robot")
    assert await people.authenticate(issued.text) == "robot"


async def test_groups_hold_no_tokens_and_cannot_ask_for_them(people: GalleryService) -> None:
    with pytest.raises(InvalidParameterError, match=r"principal 'ops' is a group; .*hold no tokens"):
        await people.create_token(ADMIN, "ops")
    with pytest.raises(AccessDeniedError, match=r"'ops' is a group; groups hold roles for their members"):
        await people.create_token("ops", "ops")
    with pytest.raises(AccessDeniedError, match=r"'ops' is a group"):
        await people.list_tokens("ops")
    assert await people.list_tokens(ADMIN) == []


async def test_an_owner_is_told_when_the_principal_does_not_exist(people: GalleryService) -> None:
    with pytest.raises(ResourceNotFoundError, match="principal 'nobody' not found"):
        await people.create_token(ADMIN, "nobody")
    with pytest.raises(ResourceNotFoundError, match="principal 'nobody' not found"):
        await people.list_tokens(ADMIN, principal="nobody")


async def test_an_unknown_or_empty_caller_makes_no_token(people: GalleryService) -> None:
    with pytest.raises(AccessDeniedError, match="unknown principal 'mallory'"):
        await people.create_token("mallory", "mallory")
    with pytest.raises(InvalidNameError, match="the calling principal is empty"):
        await people.create_token("", "robot")
    assert await people.list_tokens(ADMIN) == []


@pytest.mark.parametrize("lifetime", [0, -60, float("nan"), float("inf"), 3651 * 86400])
async def test_a_lifetime_out_of_range_makes_no_token(people: GalleryService, lifetime: float) -> None:
    with pytest.raises(InvalidParameterError, match="a token lives from 1 second to 3650 days"):
        await people.create_token(ADMIN, "robot", lifetime=lifetime)
    assert await people.list_tokens(ADMIN) == []


# --- what the catalog keeps ---------------------------------------------------------------------------


async def test_the_home_never_holds_the_secret_or_the_token(people: GalleryService, tmp_path: Path) -> None:
    issued = await people.create_token(ADMIN, "robot")
    assert await people.authenticate(issued.text) == "robot"
    await people.revoke_token(ADMIN, issued.token.id)
    secret_text = issued.text[-43:]
    secret = base64.urlsafe_b64decode(secret_text + "=")
    needles = [issued.text.encode(), secret_text.encode(), secret, secret.hex().encode()]
    files = [path for path in (tmp_path / "home").rglob("*") if path.is_file()]
    assert any(path.name.startswith("catalog.db") for path in files)
    for path in files:  # the catalog, its write-ahead log and shared memory, the configuration
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, f"{path.name} holds the token's secret"
    assert issued.token.id.encode() in b"".join(path.read_bytes() for path in files), "the id is kept"


# --- listing ----------------------------------------------------------------------------------------------


async def test_a_principal_lists_its_own_tokens_and_an_owner_everyones(people: GalleryService) -> None:
    alices = await people.create_token("alice", "alice")
    robots = await people.create_token(ADMIN, "robot")
    assert [t.id for t in await people.list_tokens("alice")] == [alices.token.id]
    assert [t.id for t in await people.list_tokens("alice", principal="alice")] == [alices.token.id]
    assert [t.id for t in await people.list_tokens("robot")] == [robots.token.id]
    assert {t.id for t in await people.list_tokens(ADMIN)} == {alices.token.id, robots.token.id}
    assert [t.id for t in await people.list_tokens(ADMIN, principal="robot")] == [robots.token.id]
    assert await people.list_tokens(ADMIN, principal=ADMIN) == []
    with pytest.raises(AccessDeniedError, match=rf"principal 'alice' {OWNER_AT_HOME}"):
        await people.list_tokens("alice", principal="robot")


# --- revoking ------------------------------------------------------------------------------------------


async def test_a_revoked_token_stops_working_at_once_and_says_so(people: GalleryService) -> None:
    issued = await people.create_token("robot", "robot")
    revoked = await people.revoke_token("robot", issued.token.id)
    assert revoked.revoked is not None and revoked.id == issued.token.id
    with pytest.raises(UnauthenticatedError, match=rf"token {issued.token.id} was revoked at "):
        await people.authenticate(issued.text)
    again = await people.revoke_token("robot", issued.token.id)
    assert again.revoked == revoked.revoked, "revoking twice is fine and keeps the first time"
    listed = await people.list_tokens("robot")
    assert [(t.id, t.revoked) for t in listed] == [(issued.token.id, revoked.revoked)]


async def test_a_leaked_token_can_be_revoked_by_its_text(people: GalleryService) -> None:
    issued = await people.create_token(ADMIN, "robot")
    await people.revoke_token(ADMIN, issued.text)
    with pytest.raises(UnauthenticatedError, match="was revoked"):
        await people.authenticate(issued.text)


async def test_revoking_anothers_token_needs_owner_at_home_and_reveals_nothing(
    people: GalleryService,
) -> None:
    robots = await people.create_token(ADMIN, "robot")
    with pytest.raises(AccessDeniedError) as existing:
        await people.revoke_token("alice", robots.token.id)
    with pytest.raises(AccessDeniedError) as missing:
        await people.revoke_token("alice", "tok_000000000000")
    shape = "'alice' holds no token {}, and revoking another principal's token needs Owner at /: "
    assert str(existing.value).startswith(shape.format(robots.token.id))
    assert str(existing.value).replace(robots.token.id, "tok_000000000000") == str(missing.value)
    assert await people.authenticate(robots.text) == "robot", "the token still works"
    with pytest.raises(ResourceNotFoundError, match="token tok_000000000000 not found"):
        await people.revoke_token(ADMIN, "tok_000000000000")
    await people.revoke_token(ADMIN, robots.token.id)
    with pytest.raises(UnauthenticatedError, match="was revoked"):
        await people.authenticate(robots.text)


async def test_revoking_something_that_is_no_token_id_is_an_input_error(people: GalleryService) -> None:
    with pytest.raises(InvalidParameterError, match="not a token id"):
        await people.revoke_token(ADMIN, "robot")


# --- expiry and deleted principals -----------------------------------------------------------------------


async def test_a_token_expires_at_its_time(people: GalleryService, monkeypatch: pytest.MonkeyPatch) -> None:
    issued = await people.create_token(ADMIN, "robot", lifetime=60)
    expires = issued.token.expires
    monkeypatch.setattr(people, "_now", lambda: expires - timedelta(seconds=1))
    assert await people.authenticate(issued.text) == "robot"
    monkeypatch.setattr(people, "_now", lambda: expires)
    with pytest.raises(UnauthenticatedError, match=rf"token {issued.token.id} expired at "):
        await people.authenticate(issued.text)
    (listed,) = await people.list_tokens(ADMIN)
    assert listed.state(expires).value == "Expired"


async def test_a_deleted_principals_tokens_stop_working_also_under_its_name_again(
    people: GalleryService,
) -> None:
    issued = await people.create_token(ADMIN, "robot")
    await people.delete_principal(ADMIN, "robot")
    with pytest.raises(
        UnauthenticatedError, match=rf"^invalid token {issued.token.id}: no token has that id"
    ):
        await people.authenticate(issued.text)
    await people.create_principal(ADMIN, "robot", "servicePrincipal")
    with pytest.raises(UnauthenticatedError, match="invalid token"):
        await people.authenticate(issued.text)
    assert await people.list_tokens(ADMIN) == []


async def test_refusals_never_repeat_the_token(people: GalleryService) -> None:
    issued = await people.create_token(ADMIN, "robot")
    wrong = issued.text[:-4] + ("AAAA" if not issued.text.endswith("AAAA") else "BBBA")
    for text in (wrong, issued.text + "x", "Bearer " + issued.text, issued.text[:-1]):
        with pytest.raises(UnauthenticatedError) as refused:
            await people.authenticate(text)
        assert issued.text[-43:] not in str(refused.value)
        assert text not in str(refused.value)


# --- one home, two processes ------------------------------------------------------------------------------


async def test_tokens_made_and_revoked_by_another_service_on_the_home_are_seen_at_once(
    people: GalleryService,
) -> None:
    """As a daemon sees what ``blobrep token`` does beside it: both are just the catalog."""
    async with await GalleryService.open(people.home) as other:
        issued = await other.create_token(ADMIN, "robot")
        assert await people.authenticate(issued.text) == "robot"
        await other.revoke_token(ADMIN, issued.token.id)
        with pytest.raises(UnauthenticatedError, match="was revoked"):
            await people.authenticate(issued.text)


# --- a read and its token in one transaction ---------------------------------------------------------


async def test_a_read_as_a_bearer_runs_as_its_principal_and_never_for_a_refused_token(
    people: GalleryService,
) -> None:
    """What the daemon does for a request that only reads: the token's principal is the
    caller of the query, and a token that is refused (revoked, wrong secret) runs nothing."""
    asked: list[str] = []

    def whoami(reads: object, home: object, caller: str) -> str:
        asked.append(caller)
        return f"read as {caller}"

    issued = await people.create_token(ADMIN, "robot")
    assert await people.read_as_bearer(issued.text, whoami) == ("robot", "read as robot")
    wrong = issued.text[:-4] + ("AAAA" if not issued.text.endswith("AAAA") else "BBBA")
    with pytest.raises(UnauthenticatedError, match="invalid token"):
        await people.read_as_bearer(wrong, whoami)
    async with await GalleryService.open(people.home) as other:
        await other.revoke_token(ADMIN, issued.token.id)
    with pytest.raises(UnauthenticatedError, match="was revoked"):
        await people.read_as_bearer(issued.text, whoami)
    assert asked == ["robot"]
