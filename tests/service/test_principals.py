"""Who may call: a named user or service principal, never an empty name and never a group."""

from __future__ import annotations

import pytest

from blobrep.errors import AccessDeniedError, InvalidNameError
from blobrep.service import GalleryService
from tests.service.conftest import ADMIN, GALLERY


@pytest.mark.parametrize("caller", ["", " ", "\t\n"])
async def test_an_empty_caller_is_refused_and_never_acts_as_anyone(
    service: GalleryService, definition: str, caller: str
) -> None:
    await service.create_assignment(ADMIN, ADMIN, "Reader", f"/galleries/{GALLERY}")
    empty = r"the calling principal is (empty|'[^']+', only whitespace): name a user or service principal"
    with pytest.raises(InvalidNameError, match=empty):
        await service.list_galleries(caller)
    with pytest.raises(InvalidNameError, match=empty):
        await service.create_gallery(caller, "other")
    with pytest.raises(InvalidNameError, match=empty):
        await service.list_regions(caller)
    with pytest.raises(InvalidNameError, match=empty):
        await service.create_assignment(caller, ADMIN, "Owner", "/galleries/nowhere")
    with pytest.raises(InvalidNameError, match=empty):
        await service.delete_assignment(caller, ADMIN, "Reader", f"/galleries/{GALLERY}")
    assert [gallery.name for gallery in await service.list_galleries(ADMIN)] == [GALLERY]
    held = await service.list_assignments(ADMIN, scope=f"/galleries/{GALLERY}", assignee=ADMIN)
    assert {item.role.value for item in held} == {"Owner", "Reader"}


async def test_a_group_cannot_act_even_with_roles(service: GalleryService, definition: str) -> None:
    await service.create_principal(ADMIN, "ops", "group")
    await service.create_assignment(ADMIN, "ops", "Owner", "/")
    is_a_group = r"'ops' is a group; groups hold roles for their members but cannot act: act as a user"
    with pytest.raises(AccessDeniedError, match=is_a_group):
        await service.list_galleries("ops")
    with pytest.raises(AccessDeniedError, match=is_a_group):
        await service.create_gallery("ops", "opsgallery")
    with pytest.raises(AccessDeniedError, match=is_a_group):
        await service.show_gallery("ops", GALLERY)
    with pytest.raises(AccessDeniedError, match=is_a_group):
        await service.create_principal("ops", "mallory", "user")
    with pytest.raises(AccessDeniedError, match=is_a_group):
        await service.create_assignment("ops", "ops", "Owner", f"/galleries/{GALLERY}")
    assert [gallery.name for gallery in await service.list_galleries(ADMIN)] == [GALLERY]
    assert "mallory" not in {principal.name for principal in await service.list_principals(ADMIN)}


async def test_the_members_of_a_group_still_act_with_its_roles(
    service: GalleryService, definition: str
) -> None:
    await service.create_principal(ADMIN, "ops", "group")
    await service.create_principal(ADMIN, "robot", "servicePrincipal")
    await service.add_member(ADMIN, "ops", "robot")
    await service.create_assignment(ADMIN, "ops", "Contributor", "/")
    with pytest.raises(AccessDeniedError, match=r"'ops' is a group"):
        await service.create_gallery("ops", "opsgallery")
    assert (await service.create_gallery("robot", "opsgallery")).name == "opsgallery"


async def test_an_unknown_caller_is_told_how_to_be_added_only_when_it_could_be(
    service: GalleryService, definition: str
) -> None:
    with pytest.raises(AccessDeniedError) as known_shape:
        await service.list_galleries("bob")
    assert "'blobrep principal create --name bob --type user'" in str(known_shape.value)
    for hostile in ("a\u202eb", "a\x00b", "x --type group", "../../etc"):
        with pytest.raises(AccessDeniedError) as refused:
            await service.list_galleries(hostile)
        message = str(refused.value)
        assert message.isprintable(), message
        assert "principal create" not in message
        assert repr(hostile) in message
