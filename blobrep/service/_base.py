"""What every part of the gallery service shares: the home, the catalog, and the access check.

Every public call of :class:`~blobrep.service.GalleryService` starts with :meth:`_Base._check`
(or a visibility filter for listings): the caller must be a known user or service principal
(never empty, never a group: groups only pass roles on to their members), and its roles
(direct or through groups, at the scope or above) must allow the action. Assignments and
memberships are read fresh from the catalog on every call, so a revoked role stops working
at once, also in another process sharing the home. The check comes before the catalog is
asked about the resource, so a caller without access is refused in the same words whether or
not it exists (see :mod:`blobrep.core.access`); calls over "everything" use :meth:`_Base._reach`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

import anyio.to_thread

from blobrep.core.access import (
    Action,
    Principal,
    PrincipalType,
    Reach,
    Role,
    RoleAssignment,
)
from blobrep.core.gallery import ReplicationState
from blobrep.core.ids import ResourceId
from blobrep.errors import AlreadyExistsError
from blobrep.service.queries import BOOTSTRAP_SETTING, Authorizer, Query, authorizer_for, region_named

if TYPE_CHECKING:
    from blobrep.catalog import Catalog
    from blobrep.core.gallery import GalleryImageVersion
    from blobrep.service.home import Home, RegionConfig
    from blobrep.storage.base import Store

StoreWrapper = Callable[[str, int, "Store"], "Store"]
"""``(region, replica number, store) -> store``: wraps every replica store the service opens.

The seam for stores that wrap stores: fault injection in tests, bandwidth limits in benchmarks.
"""

T = TypeVar("T")

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

    async def _replica_numbers(self, region: RegionConfig) -> list[int]:
        """The replicas of ``region`` that may hold data, by number: those the catalog knows of
        (:meth:`~blobrep.catalog.Catalog.region_replicas`), whatever kind of storage it is."""
        return list(range(1, await self._catalog.region_replicas(region.name) + 1))

    async def _note_replicas(self, region: str, count: int) -> None:
        """Make the catalog know replicas ``1..count`` of ``region`` before anything is written
        to them, so that no replica ever holds data the catalog does not know of. Writes only
        when the mark is lower (a write drops the catalog's kept answers)."""
        if await self._catalog.region_replicas(region) < count:
            await self._catalog.note_region_replicas(region, count)

    async def _known_stores(
        self, region: RegionConfig, *, holding: int = 0, repair: bool = False
    ) -> list[Store]:
        """Every replica of ``region`` the catalog knows of, and at least replicas ``1..holding``,
        in order: what gc, scrub, fsck and removals visit.

        ``holding`` is how many replicas the catalog counts on holding data (their Completed
        count): a missing one is an error, as a region whose storage vanished must be. One
        above it may never have been written (the catalog learns of a replica before its first
        write, so a process killed in between leaves one known and absent): it reads as empty.
        With ``repair`` (which may write to them) the catalog first learns of them all.
        """
        if repair:
            await self._note_replicas(region.name, holding)
        numbers = set(await self._replica_numbers(region)) | set(range(1, holding + 1))
        return [self._store(region, number, create=number > holding) for number in sorted(numbers)]

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

    def catalog_read_counts(self) -> tuple[int, int]:
        """(catalog reads answered from kept answers, reads decoded anew) so far, for metrics."""
        return self._catalog.read_counts()

    async def run_query(self, caller: str, query: Query[T]) -> T:
        """``query(reads, home, caller)`` in one catalog transaction on the catalog's thread.

        The reads of :mod:`blobrep.service.queries` are plain functions so that a command can
        also run them without an event loop (:func:`~blobrep.service.queries.read_without_loop`);
        this runs them for everyone else.
        """
        return await self._catalog.read_with(lambda reads: query(reads, self._home, caller))

    async def _authorizer(self, caller: str) -> Authorizer:
        """The caller's view of access, once it is known to be someone who can act.

        Only users and service principals act. A group holds roles for its members; letting
        it call would let anyone who names the group use its roles without being in it.

        Raises:
            InvalidNameError: ``caller`` is empty or only whitespace (no one was named).
            AccessDeniedError: ``caller`` is not a known principal, or is a group.
        """
        return await self._catalog.read_with(lambda reads: authorizer_for(reads, caller))

    async def _check(self, caller: str, action: Action, scope: ResourceId) -> Authorizer:
        authorizer = await self._authorizer(caller)
        authorizer.check(action, scope)
        return authorizer

    async def _reach(
        self, authorizer: Authorizer, action: Action, gallery: str, image: str | None = None
    ) -> tuple[Reach, list[GalleryImageVersion]]:
        """Where in ``gallery`` (or in its definition ``image``) the caller may do ``action``,
        and the versions there, for calls over "everything" the caller can see (scrub, fsck,
        replicate).

        The reach may be empty: the caller sees the gallery (a role on another definition)
        but may do ``action`` nowhere in it; the caller decides whether that is an error.

        Raises:
            AccessDeniedError: the caller cannot see the gallery (or the definition) at all.
                This is decided before the catalog is asked, so one that does not exist is
                refused in the same words.
            ResourceNotFoundError: the caller can see it, and it does not exist.
        """
        scope = ResourceId.of_gallery(gallery) if image is None else ResourceId.of_image(gallery, image)
        if not authorizer.sees(scope):
            authorizer.check(action, scope)
        images = (
            [image]
            if image is not None
            else [definition.name for definition in await self._catalog.list_definitions(gallery)]
        )
        versions: list[GalleryImageVersion] = []
        for name in images:
            versions += await self._catalog.list_versions(gallery, name)
        where = authorizer.reach(action, gallery, images, versions)
        return where, [
            version
            for version in versions
            if where.covers(ResourceId.of_version(gallery, version.image, version.version))
        ]

    async def _reaches(
        self, authorizer: Authorizer, action: Action, gallery: str | None
    ) -> list[tuple[Reach, list[GalleryImageVersion]]]:
        """:meth:`_reach` of ``gallery``, or of every gallery the caller can see (by name),
        leaving out those where it may do ``action`` nowhere.

        Raises:
            AccessDeniedError: ``gallery`` is given and the caller may do ``action`` nowhere in
                it; or it is not, the caller can see some gallery, and may do ``action``
                nowhere in any (the denial names the first).
            ResourceNotFoundError: ``gallery`` does not exist, and the caller may see it.
        """
        if gallery is not None:
            names = [gallery]
        else:
            names = [
                item.name
                for item in await self._catalog.list_galleries()
                if authorizer.sees(ResourceId.of_gallery(item.name))
            ]
        found: list[tuple[Reach, list[GalleryImageVersion]]] = []
        for name in names:
            where, versions = await self._reach(authorizer, action, name)
            if where.scopes:
                found.append((where, versions))
        if names and not found:
            authorizer.check(action, ResourceId.of_gallery(names[0]))
        return found

    async def _versions_of(self, gallery: str) -> list[GalleryImageVersion]:
        """Every version of every definition of ``gallery`` (no access check: callers check)."""
        found: list[GalleryImageVersion] = []
        for definition in await self._catalog.list_definitions(gallery):
            found += await self._catalog.list_versions(gallery, definition.name)
        return found

    async def _regions(self) -> dict[str, RegionConfig]:
        return await anyio.to_thread.run_sync(self._home.load_regions)

    async def _region(self, name: str) -> RegionConfig:
        """The region ``name`` (any spelling: short or display name); see
        :func:`~blobrep.service.queries.region_named`."""
        return await anyio.to_thread.run_sync(region_named, self._home, name)

    async def _known_regions(self, *names: str) -> set[str]:
        """``names`` normalised, each one a region of this home.

        Raises:
            InvalidRegionError: a name cannot be a region name at all.
            ResourceNotFoundError: the first name that is no region of this home; the message
                lists those it has.
        """
        return {(await self._region(name)).name for name in names}

    async def _grant_owner(self, caller: str, scope: ResourceId) -> None:
        with contextlib.suppress(AlreadyExistsError):  # already Owner there
            await self._catalog.create_assignment(RoleAssignment(caller, Role.OWNER, scope))


async def bootstrap(catalog: Catalog) -> str:
    """The home's bootstrap admin, created as Owner of ``/`` on first use (race-safe)."""
    admin = await catalog.get_setting(BOOTSTRAP_SETTING)
    if admin is not None:
        return admin
    with contextlib.suppress(AlreadyExistsError):
        await catalog.create_principal(Principal(DEFAULT_ADMIN, PrincipalType.USER))
    with contextlib.suppress(AlreadyExistsError):
        await catalog.create_assignment(RoleAssignment(DEFAULT_ADMIN, Role.OWNER, ResourceId.home()))
    await catalog.set_setting(BOOTSTRAP_SETTING, DEFAULT_ADMIN)
    return DEFAULT_ADMIN


def counted_on(versions: Iterable[GalleryImageVersion], region: str) -> int:
    """How many replicas of ``region`` the catalog counts on holding ``versions``: the most
    any of them completed there."""
    return max(
        (
            status.completed_replicas
            for version in versions
            if (status := version.status(region)) is not None and status.state is ReplicationState.COMPLETED
        ),
        default=0,
    )


def manifest_prefixes(where: Reach) -> list[str] | None:
    """The manifest listing prefixes of the definitions and versions ``where`` covers; None
    if it covers the whole gallery (every manifest of it)."""
    from blobrep.core.keys import manifests_prefix
    from blobrep.core.names import BlobName

    if where.whole:
        return None
    prefixes: list[str] = []
    for scope in where.scopes:
        assert scope.gallery is not None and scope.image is not None
        blob = None if scope.version is None else BlobName(scope.image, scope.version)
        prefixes.append(manifests_prefix(scope.gallery, scope.image, blob))
    return prefixes
