"""Principals, group memberships, role assignments and what deleting a resource does to them."""

from __future__ import annotations

from pathlib import Path

import pytest

from blobrep.catalog import Catalog
from blobrep.core.access import Principal, PrincipalType, Role, RoleAssignment
from blobrep.core.ids import ResourceId
from blobrep.errors import AlreadyExistsError, InvalidParameterError, PreconditionError, ResourceNotFoundError
from tests.catalog.helpers import definition, exactly, gallery, v, version

ALICE = Principal("alice", PrincipalType.USER)
DEPLOYER = Principal("deployer", PrincipalType.SERVICE_PRINCIPAL)
ADMINS = Principal("admins", PrincipalType.GROUP)
OPS = Principal("ops", PrincipalType.GROUP)


def scope(text: str) -> ResourceId:
    return ResourceId.parse(text)


async def add_principals(catalog: Catalog, *principals: Principal) -> None:
    for principal in principals:
        await catalog.create_principal(principal)


# --- principals -------------------------------------------------------------------------------


async def test_principals_of_every_type_read_back_and_list_by_name(catalog: Catalog) -> None:
    await add_principals(catalog, OPS, DEPLOYER, ALICE)
    for principal in (ALICE, DEPLOYER, OPS):
        assert await catalog.get_principal(principal.name) == principal
    assert await catalog.list_principals() == [ALICE, DEPLOYER, OPS]


async def test_a_principal_name_is_taken_whatever_its_type(catalog: Catalog) -> None:
    await catalog.create_principal(ALICE)
    with pytest.raises(AlreadyExistsError, match=exactly("principal 'alice' already exists")):
        await catalog.create_principal(Principal("alice", PrincipalType.GROUP))
    assert await catalog.get_principal("alice") == ALICE


async def test_a_missing_principal_is_not_found(catalog: Catalog) -> None:
    with pytest.raises(ResourceNotFoundError, match=exactly("principal 'bob' not found")):
        await catalog.get_principal("bob")
    with pytest.raises(ResourceNotFoundError, match=exactly("principal 'bob' not found")):
        await catalog.delete_principal("bob")


async def test_deleting_a_principal_removes_its_memberships_and_assignments(catalog: Catalog) -> None:
    await add_principals(catalog, ALICE, DEPLOYER, ADMINS, OPS)
    await catalog.add_member("admins", "alice")
    await catalog.add_member("admins", "ops")
    await catalog.add_member("ops", "deployer")
    await catalog.create_assignment(RoleAssignment("alice", Role.OWNER, scope("/")))
    await catalog.create_assignment(RoleAssignment("ops", Role.READER, scope("/")))
    await catalog.delete_principal("alice")
    await catalog.delete_principal("ops")
    assert await catalog.memberships() == {"admins": frozenset()}
    assert await catalog.all_assignments() == []
    # A new principal with an old name starts with nothing.
    await catalog.create_principal(Principal("ops", PrincipalType.GROUP))
    assert await catalog.list_members("ops") == []
    assert await catalog.list_assignments(principal="ops") == []


# --- groups -----------------------------------------------------------------------------------


async def test_groups_hold_users_service_principals_and_groups(catalog: Catalog) -> None:
    await add_principals(catalog, ALICE, DEPLOYER, ADMINS, OPS)
    await catalog.add_member("ops", "deployer")
    await catalog.add_member("ops", "alice")
    await catalog.add_member("admins", "ops")
    assert await catalog.list_members("ops") == ["alice", "deployer"]
    assert await catalog.memberships() == {
        "admins": frozenset({"ops"}),
        "ops": frozenset({"alice", "deployer"}),
    }


async def test_membership_needs_both_principals(catalog: Catalog) -> None:
    await add_principals(catalog, ALICE, OPS)
    with pytest.raises(ResourceNotFoundError, match=exactly("principal 'nobody' not found")):
        await catalog.add_member("ops", "nobody")
    with pytest.raises(ResourceNotFoundError, match=exactly("principal 'nogroup' not found")):
        await catalog.add_member("nogroup", "alice")


async def test_only_groups_have_members(catalog: Catalog) -> None:
    await add_principals(catalog, ALICE, DEPLOYER)
    message = exactly("principal 'alice' is a user, not a group; only groups have members")
    with pytest.raises(InvalidParameterError, match=message):
        await catalog.add_member("alice", "deployer")
    with pytest.raises(InvalidParameterError, match=message):
        await catalog.list_members("alice")
    assert await catalog.memberships() == {}


async def test_a_group_cannot_contain_itself(catalog: Catalog) -> None:
    await catalog.create_principal(OPS)
    with pytest.raises(InvalidParameterError, match=exactly("group 'ops' cannot be a member of itself")):
        await catalog.add_member("ops", "ops")
    assert await catalog.list_members("ops") == []


async def test_adding_a_member_twice_is_a_conflict(catalog: Catalog) -> None:
    await add_principals(catalog, ALICE, OPS)
    await catalog.add_member("ops", "alice")
    with pytest.raises(AlreadyExistsError, match=exactly("'alice' is already a member of group 'ops'")):
        await catalog.add_member("ops", "alice")
    assert await catalog.list_members("ops") == ["alice"]


async def test_removing_a_member_removes_only_that_membership(catalog: Catalog) -> None:
    await add_principals(catalog, ALICE, DEPLOYER, OPS, ADMINS)
    await catalog.add_member("ops", "alice")
    await catalog.add_member("ops", "deployer")
    await catalog.add_member("admins", "alice")
    await catalog.remove_member("ops", "alice")
    assert await catalog.memberships() == {"ops": frozenset({"deployer"}), "admins": frozenset({"alice"})}
    assert await catalog.get_principal("alice") == ALICE
    with pytest.raises(ResourceNotFoundError, match=exactly("'alice' is not a member of group 'ops'")):
        await catalog.remove_member("ops", "alice")


# --- role assignments -------------------------------------------------------------------------


async def test_assignments_list_by_exact_scope_by_principal_or_both(catalog: Catalog) -> None:
    await add_principals(catalog, ALICE, DEPLOYER, OPS)
    home = RoleAssignment("alice", Role.OWNER, scope("/"))
    gallery_reader = RoleAssignment("ops", Role.READER, scope("/galleries/g"))
    gallery_owner = RoleAssignment("alice", Role.CONTRIBUTOR, scope("/galleries/g"))
    image = RoleAssignment("deployer", Role.READER, scope("/galleries/g/images/img"))
    version_ = RoleAssignment("deployer", Role.READER, scope("/galleries/g/images/img/versions/1.0.0"))
    for assignment in (version_, image, gallery_reader, home, gallery_owner):
        await catalog.create_assignment(assignment)
    assert await catalog.list_assignments(scope=scope("/galleries/g")) == [gallery_owner, gallery_reader]
    assert await catalog.list_assignments(principal="deployer") == [image, version_]
    assert await catalog.list_assignments(scope=scope("/galleries/g"), principal="ops") == [gallery_reader]
    assert await catalog.list_assignments(scope=scope("/galleries/other")) == []
    everything = [home, gallery_owner, gallery_reader, image, version_]
    assert await catalog.all_assignments() == everything
    assert await catalog.list_assignments() == everything


async def test_an_assignment_needs_its_principal(catalog: Catalog) -> None:
    with pytest.raises(ResourceNotFoundError, match=exactly("principal 'bob' not found")):
        await catalog.create_assignment(RoleAssignment("bob", Role.READER, scope("/")))


async def test_the_same_assignment_twice_is_a_conflict_but_another_role_is_not(catalog: Catalog) -> None:
    await catalog.create_principal(ALICE)
    reader = RoleAssignment("alice", Role.READER, scope("/galleries/g"))
    await catalog.create_assignment(reader)
    with pytest.raises(
        AlreadyExistsError, match=exactly("principal 'alice' already has role Reader at /galleries/g")
    ):
        await catalog.create_assignment(reader)
    owner = RoleAssignment("alice", Role.OWNER, scope("/galleries/g"))
    await catalog.create_assignment(owner)
    assert await catalog.list_assignments(principal="alice") == [owner, reader]


async def test_deleting_an_assignment_removes_only_it(catalog: Catalog) -> None:
    await catalog.create_principal(ALICE)
    reader = RoleAssignment("alice", Role.READER, scope("/galleries/g"))
    owner = RoleAssignment("alice", Role.OWNER, scope("/galleries/g"))
    await catalog.create_assignment(reader)
    await catalog.create_assignment(owner)
    await catalog.delete_assignment(reader)
    assert await catalog.all_assignments() == [owner]
    with pytest.raises(
        ResourceNotFoundError, match=exactly("principal 'alice' has no role Reader at /galleries/g")
    ):
        await catalog.delete_assignment(reader)


# --- deleting a resource deletes the grants within it -----------------------------------------

_SCOPES = (
    "/",
    "/galleries/a_b",
    "/galleries/a_b/images/img",
    "/galleries/a_b/images/img/versions/1.0.1",
    "/galleries/a_b/images/img/versions/1.0.10",
    "/galleries/a_b/images/img2",
    "/galleries/a_b/images/img2/versions/1.0.1",
    "/galleries/aXb",  # matched by a LIKE pattern 'a_b', which must not be used
    "/galleries/a_b2",  # shares the text prefix '/galleries/a_b'
    "/galleries/a_b2/images/img",
)


async def granted_everywhere(catalog: Catalog) -> Catalog:
    await catalog.create_principal(ALICE)
    for text in _SCOPES:
        await catalog.create_assignment(RoleAssignment("alice", Role.READER, scope(text)))
    return catalog


def scopes_left(assignments: list[RoleAssignment]) -> set[str]:
    return {str(assignment.scope) for assignment in assignments}


async def test_deleting_a_version_deletes_the_grants_at_it_but_not_its_siblings(catalog: Catalog) -> None:
    await catalog.create_gallery(gallery("a_b"))
    await catalog.create_definition(definition("img", "a_b"))
    await catalog.create_version(version("1.0.1", gallery="a_b"))
    await granted_everywhere(catalog)
    await catalog.delete_version("a_b", "img", v("1.0.1"))
    assert scopes_left(await catalog.all_assignments()) == set(_SCOPES) - {
        "/galleries/a_b/images/img/versions/1.0.1"
    }


async def test_deleting_a_definition_deletes_the_grants_within_it_but_not_its_siblings(
    catalog: Catalog,
) -> None:
    await catalog.create_gallery(gallery("a_b"))
    await catalog.create_definition(definition("img", "a_b"))
    await granted_everywhere(catalog)
    await catalog.delete_definition("a_b", "img")
    assert scopes_left(await catalog.all_assignments()) == set(_SCOPES) - {
        "/galleries/a_b/images/img",
        "/galleries/a_b/images/img/versions/1.0.1",
        "/galleries/a_b/images/img/versions/1.0.10",
    }


async def test_deleting_a_gallery_deletes_the_grants_within_it_and_nothing_else(catalog: Catalog) -> None:
    await catalog.create_gallery(gallery("a_b"))
    await granted_everywhere(catalog)
    await catalog.delete_gallery("a_b")
    assert scopes_left(await catalog.all_assignments()) == {
        "/",
        "/galleries/aXb",
        "/galleries/a_b2",
        "/galleries/a_b2/images/img",
    }
    # A gallery created later under the same name does not inherit the old grants.
    await catalog.create_gallery(gallery("a_b"))
    assert await catalog.list_assignments(scope=scope("/galleries/a_b")) == []


async def test_a_refused_delete_keeps_the_grants(catalog: Catalog) -> None:
    await catalog.create_gallery(gallery("a_b"))
    await catalog.create_definition(definition("img", "a_b"))
    await granted_everywhere(catalog)
    with pytest.raises(PreconditionError):
        await catalog.delete_gallery("a_b")
    assert scopes_left(await catalog.all_assignments()) == set(_SCOPES)


# --- settings ---------------------------------------------------------------------------------


async def test_settings_are_unset_until_set_then_replaced_and_kept(db_path: Path) -> None:
    async with await Catalog.open(db_path) as catalog:
        assert await catalog.get_setting("bootstrap-admin") is None
        await catalog.set_setting("bootstrap-admin", "alice")
        await catalog.set_setting("bootstrap-admin", "bob")
        await catalog.set_setting("empty", "")
    async with await Catalog.open(db_path) as catalog:
        assert await catalog.get_setting("bootstrap-admin") == "bob"
        assert await catalog.get_setting("empty") == ""
