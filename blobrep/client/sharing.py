"""Principals, group members and role assignments over HTTP (see :mod:`blobrep.daemon.sharing`).

Creating sends ``If-None-Match: *``: create, never update. A daemon that answers ``200``
instead of ``201`` found the principal, member or assignment already there (and left it as
it was); that is reported as the local command reports it, an :class:`AlreadyExistsError`
in the catalog's words. Deleting an assignment names it by the id the daemon derives from
(principal, role, scope), so no listing is needed; one that is not there is reported in the
catalog's words too.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Final
from urllib.parse import quote

from blobrep.client.resources import assignment_from, member_from, principal_from
from blobrep.core.access import RoleAssignment, parse_role
from blobrep.core.ids import ResourceId
from blobrep.core.principals import validate_principal_name
from blobrep.errors import AlreadyExistsError, InvalidNameError, ResourceNotFoundError

if TYPE_CHECKING:
    from blobrep.client.connection import Connection
    from blobrep.core.access import Principal

#: The namespace of assignment names, as the daemon derives them (fixed forever).
ASSIGNMENT_NAMESPACE: Final = uuid.UUID("627e2cd4-8c2e-4622-9e19-d1d3b73d3331")
_CREATE_ONLY: Final = {"If-None-Match": "*"}


def assignment_name(assignment: RoleAssignment) -> str:
    """The id the daemon gives ``assignment``: a uuid5 of its canonical (principal, role, scope)."""
    triple = f"{assignment.principal}\n{assignment.role.value}\n{assignment.scope}"
    return str(uuid.uuid5(ASSIGNMENT_NAMESPACE, triple))


def _segment(name: str) -> str:
    """``name`` as the path segment of a principal.

    A name no principal can have (a slash, a space, nothing at all) names none, and is
    answered here in the catalog's words: sent, it could reach another route.

    Raises:
        ResourceNotFoundError: ``name`` cannot be a principal's.
    """
    try:
        validate_principal_name(name)
    except InvalidNameError:
        raise ResourceNotFoundError(f"principal {name!r} not found") from None
    return quote(name, safe="")


def _describe(assignment: RoleAssignment) -> str:
    return f"role {assignment.role.value} at {assignment.scope}"


class RemoteSharing:
    """The principal, membership and assignment calls, against one connection."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def create_principal(self, name: str, principal_type: str) -> Principal:
        validate_principal_name(name)
        response = await self._connection.send(
            "PUT",
            f"/principals/{_segment(name)}",
            body={"properties": {"principalType": principal_type}},
            headers=_CREATE_ONLY,
        )
        if response.status_code != 201:
            raise AlreadyExistsError(f"principal {name!r} already exists")
        return principal_from(self._connection.parse(response))

    async def list_principals(self) -> list[Principal]:
        return [principal_from(item) for item in await self._connection.listing("/principals")]

    async def show_principal(self, name: str) -> Principal:
        return principal_from(await self._connection.document("GET", f"/principals/{_segment(name)}"))

    async def delete_principal(self, name: str) -> None:
        await self._connection.send("DELETE", f"/principals/{_segment(name)}")

    async def add_member(self, group: str, member: str) -> list[str]:
        response = await self._connection.send(
            "PUT", f"/principals/{_segment(group)}/members/{_segment(member)}", headers=_CREATE_ONLY
        )
        if response.status_code != 201:
            raise AlreadyExistsError(f"{member!r} is already a member of group {group!r}")
        return await self.list_members(group)

    async def remove_member(self, group: str, member: str) -> list[str]:
        await self._connection.send("DELETE", f"/principals/{_segment(group)}/members/{_segment(member)}")
        return await self.list_members(group)

    async def list_members(self, group: str) -> list[str]:
        path = f"/principals/{_segment(group)}/members"
        return [member_from(item) for item in await self._connection.listing(path)]

    async def create_assignment(self, assignee: str, role: str, scope: str) -> RoleAssignment:
        response = await self._connection.send(
            "POST",
            "/roleAssignments",
            body={"properties": {"principalName": assignee, "roleDefinitionName": role, "scope": scope}},
            headers=_CREATE_ONLY,
        )
        assignment = assignment_from(self._connection.parse(response))
        if response.status_code != 201:
            raise AlreadyExistsError(f"principal {assignee!r} already has {_describe(assignment)}")
        return assignment

    async def list_assignments(self, *, scope: str | None, assignee: str | None) -> list[RoleAssignment]:
        params = {
            key: value for key, value in (("scope", scope), ("assignee", assignee)) if value is not None
        }
        items = await self._connection.listing("/roleAssignments", params=params)
        return [assignment_from(item) for item in items]

    async def delete_assignment(self, assignee: str, role: str, scope: str) -> None:
        """Delete the assignment by its derived id.

        Raises:
            InvalidNameError, InvalidParameterError: the scope or role is malformed (checked
                here, in the service's words, before anything is sent).
            ResourceNotFoundError: there is no such assignment that the caller can see.
        """
        where = ResourceId.parse(scope)
        assignment = RoleAssignment(assignee, parse_role(role), where)
        try:
            await self._connection.send("DELETE", f"/roleAssignments/{assignment_name(assignment)}")
        except ResourceNotFoundError:
            raise ResourceNotFoundError(f"principal {assignee!r} has no {_describe(assignment)}") from None
