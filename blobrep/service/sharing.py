"""Principals, groups and role assignments: who may use which gallery.

The principal directory is home-wide: creating or deleting principals and changing group
membership needs Owner at ``/`` (a membership change grants whatever the group holds, so it
is as strong as an assignment everywhere). Assigning a role needs Owner at that scope or
above. Any known principal may list and show principals, so that owners can find whom to
share with.
"""

from __future__ import annotations

from blobrep.core.access import (
    Action,
    Principal,
    RoleAssignment,
    parse_principal_type,
    parse_role,
)
from blobrep.core.ids import ResourceId, ResourceKind
from blobrep.core.principals import validate_principal_name
from blobrep.core.version import ImageVersion
from blobrep.errors import InvalidParameterError, PreconditionError
from blobrep.service._base import _Base


class _Sharing(_Base):
    # --- principals -----------------------------------------------------------------------

    async def create_principal(self, caller: str, name: str, principal_type: str) -> Principal:
        await self._check(caller, Action.MANAGE_ACCESS, ResourceId.home())
        principal = Principal(validate_principal_name(name), parse_principal_type(principal_type))
        await self._catalog.create_principal(principal)
        return principal

    async def list_principals(self, caller: str) -> list[Principal]:
        await self._authorizer(caller)
        return await self._catalog.list_principals()

    async def show_principal(self, caller: str, name: str) -> Principal:
        await self._authorizer(caller)
        return await self._catalog.get_principal(name)

    async def delete_principal(self, caller: str, name: str) -> None:
        """Delete a principal with its memberships and assignments; the bootstrap admin stays."""
        await self._check(caller, Action.MANAGE_ACCESS, ResourceId.home())
        if name == self._admin:
            raise PreconditionError(f"{name!r} is this home's bootstrap admin and cannot be deleted")
        await self._catalog.delete_principal(name)

    # --- groups ---------------------------------------------------------------------------

    async def add_member(self, caller: str, group: str, member: str) -> list[str]:
        """Add ``member`` (any principal, groups included) to ``group``; returns the members."""
        await self._check(caller, Action.MANAGE_ACCESS, ResourceId.home())
        await self._catalog.add_member(group, member)
        return await self._catalog.list_members(group)

    async def remove_member(self, caller: str, group: str, member: str) -> list[str]:
        await self._check(caller, Action.MANAGE_ACCESS, ResourceId.home())
        await self._catalog.remove_member(group, member)
        return await self._catalog.list_members(group)

    async def list_members(self, caller: str, group: str) -> list[str]:
        await self._authorizer(caller)
        await self._catalog.get_principal(group)
        return await self._catalog.list_members(group)

    # --- role assignments -----------------------------------------------------------------

    async def _existing_scope(self, scope_text: str) -> ResourceId:
        """Parse a scope and make sure what it names exists (assignments on nothing are typos)."""
        scope = ResourceId.parse(scope_text)
        if scope.latest:
            raise InvalidParameterError(
                f"scope {scope_text!r} names 'latest', which changes over time; assign at the"
                " definition to cover every version, or at one version"
            )
        if scope.gallery is not None:
            await self._catalog.get_gallery(scope.gallery)
        if scope.image is not None:
            assert scope.gallery is not None
            await self._catalog.get_definition(scope.gallery, scope.image)
        if scope.kind is ResourceKind.IMAGE_VERSION:
            assert scope.gallery is not None and scope.image is not None
            assert isinstance(scope.version, ImageVersion)
            await self._catalog.get_version(scope.gallery, scope.image, scope.version)
        return scope

    async def create_assignment(self, caller: str, assignee: str, role: str, scope: str) -> RoleAssignment:
        """Give ``assignee`` ``role`` at ``scope`` and below (Owner at that scope or above).

        Access is checked before the scope is looked up, so a caller that may not manage
        access there is refused in the same words whether or not the scope exists.

        Raises:
            AccessDeniedError: the caller is not Owner at ``scope`` or above.
            ResourceNotFoundError: the scope does not exist (said only to such an Owner).
        """
        authorizer = await self._authorizer(caller)  # an empty or group caller is refused first
        where = ResourceId.parse(scope)
        if not where.latest:
            authorizer.check(Action.MANAGE_ACCESS, where)
        where = await self._existing_scope(scope)
        assignment = RoleAssignment(assignee, parse_role(role), where)
        await self._catalog.create_assignment(assignment)
        return assignment

    async def list_assignments(
        self, caller: str, *, scope: str | None = None, assignee: str | None = None
    ) -> list[RoleAssignment]:
        """Assignments at ``scope`` (or everywhere) the caller can see, optionally for one assignee."""
        authorizer = await self._authorizer(caller)
        where = ResourceId.parse(scope) if scope is not None else None
        if where is not None:
            authorizer.check(Action.READ, where)
        return [
            assignment
            for assignment in await self._catalog.list_assignments(scope=where, principal=assignee)
            if authorizer.sees(assignment.scope)
        ]

    async def delete_assignment(self, caller: str, assignee: str, role: str, scope: str) -> None:
        authorizer = await self._authorizer(caller)
        where = ResourceId.parse(scope)
        authorizer.check(Action.MANAGE_ACCESS, where)
        assignment = RoleAssignment(assignee, parse_role(role), where)
        if assignee == self._admin and where == ResourceId.home():
            raise PreconditionError(f"{assignee!r} is this home's bootstrap admin; its Owner role at / stays")
        await self._catalog.delete_assignment(assignment)
