"""What every part of the gallery service shares: the home, the catalog, and the access check.

Every public call of :class:`~blobrep.service.GalleryService` starts with :meth:`_Base._check`
(or a visibility filter for listings): the caller must be a known user or service principal
(never empty, never a group: groups only pass roles on to their members), and its roles
(direct or through groups, at the scope or above) must allow the action. Assignments and
memberships are read fresh from the catalog on every call, so a revoked role stops working
at once, also in another process sharing the home.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import anyio.to_thread

from blobrep.catalog import Catalog
from blobrep.core.access import Action, Principal, PrincipalType, Role, RoleAssignment, can_see, check
from blobrep.core.gallery import GalleryImageVersion
from blobrep.core.ids import ResourceId
from blobrep.errors import AccessDeniedError, ConflictError, InvalidNameError, ResourceNotFoundError
from blobrep.service.home import Home, RegionConfig
from blobrep.storage.base import Store

StoreWrapper = Callable[[str, int, Store], Store]
"""``(region, replica number, store) -> store``: wraps every replica store the service opens.

The seam for stores that wrap stores: fault injection in tests, bandwidth limits in benchmarks.
"""

#: The catalog setting that names the home's bootstrap admin.
BOOTSTRAP_SETTING: Final = "bootstrap_admin"
DEFAULT_ADMIN: Final = "admin"


class _Base:
    """State shared by the service's parts; see :class:`~blobrep.service.GalleryService`."""

    def __init__(
        self, home: Home, catalog: Catalog, admin: str, wrap_store: StoreWrapper | None = None
    ) -> None:
        self._home = home
        self._catalog = catalog
        self._admin = admin
        self._wrap_store = wrap_store

    def _store(self, region: RegionConfig, number: int, *, create: bool) -> Store:
        """Replica ``number`` of ``region``, through the wrapper the service was opened with."""
        store: Store = region.store(number, create=create)
        if self._wrap_store is not None:
            store = self._wrap_store(region.name, number, store)
        return store

    @property
    def home(self) -> Path:
        """The home directory this service works in."""
        return self._home.root

    @property
    def bootstrap_admin(self) -> str:
        """The principal that owns the whole home; the CLI acts as it when no ``--as`` is given."""
        return self._admin

    @staticmethod
    def _now() -> datetime:
        return datetime.now(UTC).replace(microsecond=0)

    async def _authorizer(self, caller: str) -> _Authorizer:
        """The caller's view of access, once it is known to be someone who can act.

        Only users and service principals act. A group holds roles for its members; letting
        it call would let anyone who names the group use its roles without being in it.

        Raises:
            InvalidNameError: ``caller`` is empty or only whitespace (no one was named).
            AccessDeniedError: ``caller`` is not a known principal, or is a group.
        """
        if not caller.strip():
            shown = "empty" if not caller else f"{caller!r}, only whitespace"
            raise InvalidNameError(f"the calling principal is {shown}: name a user or service principal")
        try:
            principal = await self._catalog.get_principal(caller)
        except ResourceNotFoundError:
            raise AccessDeniedError(
                f"unknown principal {caller!r}: an admin can add it with"
                f" 'blobrep principal create --name {caller} --type user'"
            ) from None
        if principal.type is PrincipalType.GROUP:
            raise AccessDeniedError(
                f"{caller!r} is a group; groups hold roles for their members but cannot act:"
                " act as a user or service principal"
            )
        return _Authorizer(caller, await self._catalog.all_assignments(), await self._catalog.memberships())

    async def _check(self, caller: str, action: Action, scope: ResourceId) -> _Authorizer:
        authorizer = await self._authorizer(caller)
        authorizer.check(action, scope)
        return authorizer

    async def _versions_of(self, gallery: str) -> list[GalleryImageVersion]:
        """Every version of every definition of ``gallery`` (no access check: callers check)."""
        found: list[GalleryImageVersion] = []
        for definition in await self._catalog.list_definitions(gallery):
            found += await self._catalog.list_versions(gallery, definition.name)
        return found

    async def _regions(self) -> dict[str, RegionConfig]:
        return await anyio.to_thread.run_sync(self._home.load_regions)

    async def _region(self, name: str) -> RegionConfig:
        regions = await self._regions()
        if name not in regions:
            known = ", ".join(sorted(regions))
            raise ResourceNotFoundError(f"region {name!r} not found; this home has: {known}")
        return regions[name]

    async def _grant_owner(self, caller: str, scope: ResourceId) -> None:
        with contextlib.suppress(ConflictError):  # already Owner there
            await self._catalog.create_assignment(RoleAssignment(caller, Role.OWNER, scope))


class _Authorizer:
    """One caller's view of the assignments at one moment: checks and visibility filters."""

    def __init__(
        self, caller: str, assignments: list[RoleAssignment], memberships: dict[str, frozenset[str]]
    ) -> None:
        self.caller = caller
        self._assignments = assignments
        self._memberships = memberships

    def check(self, action: Action, scope: ResourceId) -> None:
        check(self.caller, action, scope, self._assignments, self._memberships)

    def sees(self, scope: ResourceId) -> bool:
        return can_see(self.caller, scope, self._assignments, self._memberships)


async def bootstrap(catalog: Catalog) -> str:
    """The home's bootstrap admin, created as Owner of ``/`` on first use (race-safe)."""
    admin = await catalog.get_setting(BOOTSTRAP_SETTING)
    if admin is not None:
        return admin
    with contextlib.suppress(ConflictError):
        await catalog.create_principal(Principal(DEFAULT_ADMIN, PrincipalType.USER))
    with contextlib.suppress(ConflictError):
        await catalog.create_assignment(RoleAssignment(DEFAULT_ADMIN, Role.OWNER, ResourceId.home()))
    await catalog.set_setting(BOOTSTRAP_SETTING, DEFAULT_ADMIN)
    return DEFAULT_ADMIN
