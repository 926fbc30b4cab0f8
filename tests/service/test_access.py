"""Every call checks the caller: roles at a scope apply below it, groups pass them on."""

from __future__ import annotations

from pathlib import Path

import pytest

from blobrep.core.access import PrincipalType, Role
from blobrep.errors import AccessDeniedError, InvalidParameterError, PreconditionError, ResourceNotFoundError
from blobrep.service import DefinitionFields, GalleryService, VersionOptions
from tests.service.conftest import ADMIN, GALLERY, IMAGE

FIELDS = DefinitionFields(publisher="contoso", offer="debian", sku="12", os_type="Linux")


async def add_user(service: GalleryService, name: str, kind: str = "user") -> None:
    await service.create_principal(ADMIN, name, kind)


async def test_the_creator_of_a_gallery_becomes_its_owner(service: GalleryService) -> None:
    await add_user(service, "carol")
    await service.create_assignment(ADMIN, "carol", "Contributor", "/")
    await service.create_gallery("carol", "carols")
    owners = await service.list_assignments(ADMIN, scope="/galleries/carols")
    assert [(item.principal, item.role) for item in owners] == [("carol", Role.OWNER)]


async def test_an_unknown_caller_is_denied_and_told_how_to_be_added(service: GalleryService) -> None:
    with pytest.raises(AccessDeniedError, match=r"unknown principal 'mallory'.*principal create"):
        await service.list_galleries("mallory")


async def test_a_principal_without_roles_sees_nothing_and_may_do_nothing(
    service: GalleryService, definition: str
) -> None:
    await add_user(service, "bob")
    assert await service.list_galleries("bob") == []
    with pytest.raises(AccessDeniedError, match=r"'bob' may not read /galleries/gallery1: it holds no role"):
        await service.show_gallery("bob", GALLERY)
    with pytest.raises(AccessDeniedError, match=r"'bob' may not write to /: .*Contributor"):
        await service.create_gallery("bob", "bobs")


async def test_a_reader_reads_but_does_not_write(
    service: GalleryService, definition: str, source: Path
) -> None:
    await add_user(service, "bob")
    await service.create_assignment(ADMIN, "bob", "reader", f"/galleries/{GALLERY}")
    assert (await service.show_definition("bob", GALLERY, IMAGE)).name == IMAGE
    with pytest.raises(
        AccessDeniedError, match=r"may not write to /galleries/gallery1/images/ubuntu.*Reader"
    ):
        await service.create_version("bob", GALLERY, IMAGE, "1.0.0", source=source)
    with pytest.raises(AccessDeniedError, match=r"may not delete"):
        await service.delete_definition("bob", GALLERY, IMAGE)


async def test_a_contributor_publishes_but_does_not_share(
    service: GalleryService, definition: str, source: Path
) -> None:
    await add_user(service, "dev")
    await service.create_assignment(ADMIN, "dev", "Contributor", f"/galleries/{GALLERY}/images/{IMAGE}")
    version = await service.create_version("dev", GALLERY, IMAGE, "1.0.0", source=source)
    assert version.is_completed_in("westcentralus")
    with pytest.raises(AccessDeniedError, match=r"manage access"):
        await service.create_assignment("dev", "dev", "Owner", f"/galleries/{GALLERY}/images/{IMAGE}")
    with pytest.raises(AccessDeniedError, match=r"may not write to /galleries/gallery1"):
        await service.create_definition("dev", GALLERY, "debian", FIELDS)


async def test_roles_are_inherited_downwards_only(
    service: GalleryService, definition: str, source: Path
) -> None:
    await service.create_version(ADMIN, GALLERY, IMAGE, "1.0.0", source=source)
    await service.create_definition(ADMIN, GALLERY, "debian", FIELDS)
    await add_user(service, "vmuser")
    await service.create_assignment(ADMIN, "vmuser", "Reader", f"/galleries/{GALLERY}/images/{IMAGE}")
    assert str((await service.show_version("vmuser", GALLERY, IMAGE, "1.0.0")).version) == "1.0.0"
    assert str((await service.show_version("vmuser", GALLERY, IMAGE, "latest")).version) == "1.0.0"
    with pytest.raises(AccessDeniedError):
        await service.show_definition("vmuser", GALLERY, "debian")
    with pytest.raises(AccessDeniedError):
        await service.show_gallery("vmuser", GALLERY)
    # It can still find its way down: the gallery is listed, with only the definition it reads.
    assert [gallery.name for gallery in await service.list_galleries("vmuser")] == [GALLERY]
    assert [item.name for item in await service.list_definitions("vmuser", GALLERY)] == [IMAGE]


async def test_groups_pass_their_roles_to_members_even_nested(
    service: GalleryService, definition: str
) -> None:
    await add_user(service, "erin")
    await add_user(service, "ops", "group")
    await add_user(service, "sre", "group")
    assert await service.add_member(ADMIN, "ops", "sre") == ["sre"]
    assert await service.add_member(ADMIN, "sre", "erin") == ["erin"]
    await service.create_assignment(ADMIN, "ops", "Contributor", f"/galleries/{GALLERY}")
    await service.create_definition("erin", GALLERY, "debian", FIELDS)
    await service.remove_member(ADMIN, "sre", "erin")
    with pytest.raises(AccessDeniedError):
        await service.create_definition("erin", GALLERY, "debian2", FIELDS)


async def test_a_revoked_role_stops_working_at_once(service: GalleryService, definition: str) -> None:
    await add_user(service, "bob")
    await service.create_assignment(ADMIN, "bob", "Reader", f"/galleries/{GALLERY}")
    await service.show_gallery("bob", GALLERY)
    await service.delete_assignment(ADMIN, "bob", "Reader", f"/galleries/{GALLERY}")
    with pytest.raises(AccessDeniedError):
        await service.show_gallery("bob", GALLERY)


async def test_an_owner_of_a_gallery_shares_it_but_not_others(
    service: GalleryService, definition: str
) -> None:
    await add_user(service, "owner")
    await add_user(service, "friend")
    await service.create_gallery(ADMIN, "other")
    await service.create_assignment(ADMIN, "owner", "Owner", f"/galleries/{GALLERY}")
    await service.create_assignment("owner", "friend", "Reader", f"/galleries/{GALLERY}/images/{IMAGE}")
    with pytest.raises(AccessDeniedError, match=r"/galleries/other"):
        await service.create_assignment("owner", "friend", "Reader", "/galleries/other")
    with pytest.raises(AccessDeniedError, match=r"manage access at /"):
        await service.create_principal("owner", "stranger", "user")


async def test_assignments_need_an_existing_scope_and_principal(
    service: GalleryService, definition: str
) -> None:
    with pytest.raises(ResourceNotFoundError, match=r"nothere"):
        await service.create_assignment(ADMIN, "admin", "Reader", "/galleries/nothere")
    with pytest.raises(ResourceNotFoundError, match=r"ghost"):
        await service.create_assignment(ADMIN, "ghost", "Reader", f"/galleries/{GALLERY}")
    with pytest.raises(InvalidParameterError, match=r"latest"):
        await service.create_assignment(
            ADMIN, "admin", "Reader", f"/galleries/{GALLERY}/images/{IMAGE}/versions/latest"
        )
    with pytest.raises(InvalidParameterError, match=r"Reader, Contributor, Owner"):
        await service.create_assignment(ADMIN, "admin", "Janitor", f"/galleries/{GALLERY}")


async def test_the_bootstrap_admin_cannot_be_removed(service: GalleryService) -> None:
    with pytest.raises(PreconditionError, match=r"bootstrap admin"):
        await service.delete_principal(ADMIN, ADMIN)
    with pytest.raises(PreconditionError, match=r"bootstrap admin"):
        await service.delete_assignment(ADMIN, ADMIN, "Owner", "/")


async def test_deleting_a_gallery_drops_the_grants_below_it(service: GalleryService, definition: str) -> None:
    await add_user(service, "bob")
    await service.create_assignment(ADMIN, "bob", "Reader", f"/galleries/{GALLERY}/images/{IMAGE}")
    await service.delete_definition(ADMIN, GALLERY, IMAGE)
    await service.create_definition(ADMIN, GALLERY, IMAGE, FIELDS)
    with pytest.raises(AccessDeniedError):
        await service.show_definition("bob", GALLERY, IMAGE)


async def test_principals_are_listed_with_their_types(service: GalleryService) -> None:
    await add_user(service, "pipeline", "servicePrincipal")
    principals = {item.name: item.type for item in await service.list_principals(ADMIN)}
    assert principals == {"admin": PrincipalType.USER, "pipeline": PrincipalType.SERVICE_PRINCIPAL}


async def test_update_needs_write_on_the_version(
    service: GalleryService, definition: str, source: Path
) -> None:
    await service.create_version(ADMIN, GALLERY, IMAGE, "1.0.0", source=source)
    await add_user(service, "bob")
    await service.create_assignment(ADMIN, "bob", "Reader", f"/galleries/{GALLERY}")
    with pytest.raises(AccessDeniedError, match=r"versions/1.0.0"):
        await service.update_version("bob", GALLERY, IMAGE, "1.0.0", VersionOptions(exclude_from_latest=True))
