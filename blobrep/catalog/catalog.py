"""The catalog facade: one async method per operation, each one transaction.

The catalog stores and returns the values of :mod:`blobrep.core`; it neither validates names
nor checks access (the service does both before calling). What it does guarantee: creating
something that exists is an :class:`AlreadyExistsError`, never an overwrite; naming something
missing is a :class:`ResourceNotFoundError` that says which level is missing; a call either
happens whole or not at all; and no ``sqlite3`` exception ever reaches the caller (they become
:class:`StorageError`).

Deleting a gallery, definition or version also deletes the role assignments at it and below
it, in the same transaction: a resource created later under the same name must not inherit
the grants of the one that was deleted. Deleting a version also forgets its operations.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from blobrep.catalog import assignments, galleries, operations, principals, settings, tokens, versions
from blobrep.catalog.async_operations import AsyncOperationTable
from blobrep.catalog.db import Database
from blobrep.catalog.reads import CatalogReads
from blobrep.catalog.region_replicas import RegionReplicaTable

if TYPE_CHECKING:
    from datetime import datetime

    from blobrep.core.access import Principal, RoleAssignment
    from blobrep.core.gallery import (
        Gallery,
        GalleryImageVersion,
        ImageDefinition,
        ProvisioningState,
        RegionStatus,
    )
    from blobrep.core.holders import ProcessIdentity
    from blobrep.core.ids import ResourceId
    from blobrep.core.operations import Operation, OperationKind
    from blobrep.core.tokens import StoredToken, Token
    from blobrep.core.version import ImageVersion


T = TypeVar("T")


class Catalog(AsyncOperationTable, RegionReplicaTable):
    """Metadata of one blobrep home: the gallery hierarchy, replication status and access.

    Two catalogs may be open on the same file at once, in one process or in several; each
    sees what the other committed.

    Every method may also raise :class:`StorageError` when SQLite fails (or the catalog is
    closed); the ``Raises:`` sections list only what a caller would act on.
    """

    def __init__(self, database: Database) -> None:
        self._db = database

    @classmethod
    async def open(cls, path: Path) -> Catalog:
        """Open the catalog file at ``path``, creating it and its directory if missing.

        Raises:
            StorageError: the file is not a blobrep catalog, was written by a newer blobrep,
                or cannot be opened.
        """
        return cls(await Database.open(path))

    @property
    def path(self) -> Path:
        return self._db.path

    async def close(self) -> None:
        await self._db.close()

    async def __aenter__(self) -> Catalog:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def read_counts(self) -> tuple[int, int]:
        """(reads answered from decoded answers kept, reads decoded anew) so far; see
        :mod:`blobrep.catalog.read_cache`."""
        return self._db.cache.hits, self._db.cache.misses

    async def read_with(self, query: Callable[[CatalogReads], T]) -> T:
        """``query`` on a worker thread, over reads that all see one consistent state.

        One thread hop for a query of several reads; the same query runs without a loop on
        a :func:`~blobrep.catalog.reads.read_snapshot`.
        """
        return await self._db.read(lambda c: query(CatalogReads(c, self._db.cache)))

    # --- galleries ----------------------------------------------------------------------------

    async def create_gallery(self, gallery: Gallery) -> None:
        """Store a new gallery.

        Raises:
            AlreadyExistsError: a gallery of that name exists.
        """
        await self._db.write(lambda c: galleries.create_gallery(c, gallery))

    async def get_gallery(self, name: str) -> Gallery:
        """The gallery called ``name``.

        Raises:
            ResourceNotFoundError: no such gallery.
        """
        return await self._db.read(lambda c: galleries.get_gallery(c, name))

    async def list_galleries(self) -> list[Gallery]:
        """Every gallery, sorted by name."""
        return await self._db.read(galleries.list_galleries)

    async def update_gallery(self, gallery: Gallery) -> None:
        """Replace the gallery's fields (found by name).

        Raises:
            ResourceNotFoundError: no such gallery.
        """
        await self._db.write(lambda c: galleries.update_gallery(c, gallery))

    async def delete_gallery(self, name: str) -> None:
        """Delete an empty gallery and the role assignments within it.

        Raises:
            ResourceNotFoundError: no such gallery.
            PreconditionError: it still holds image definitions (the message says how many).
        """
        await self._db.write(lambda c: galleries.delete_gallery(c, name))

    # --- image definitions --------------------------------------------------------------------

    async def create_definition(self, d: ImageDefinition) -> None:
        """Store a new image definition.

        Raises:
            ResourceNotFoundError: the gallery does not exist.
            AlreadyExistsError: the name is taken, or another definition has the same identifier
                (the message names it).
        """
        await self._db.write(lambda c: galleries.create_definition(c, d))

    async def get_definition(self, gallery: str, name: str) -> ImageDefinition:
        """The definition ``name`` of ``gallery``.

        Raises:
            ResourceNotFoundError: no such gallery or definition (the message says which).
        """
        return await self._db.read(lambda c: galleries.get_definition(c, gallery, name))

    async def list_definitions(self, gallery: str) -> list[ImageDefinition]:
        """The gallery's definitions, sorted by name.

        Raises:
            ResourceNotFoundError: no such gallery.
        """
        return await self._db.read(lambda c: galleries.list_definitions(c, gallery))

    async def update_definition(self, d: ImageDefinition) -> None:
        """Replace every field but the gallery and the name.

        Raises:
            ResourceNotFoundError: no such gallery or definition.
            AlreadyExistsError: the new identifier belongs to another definition.
        """
        await self._db.write(lambda c: galleries.update_definition(c, d))

    async def delete_definition(self, gallery: str, name: str) -> None:
        """Delete a definition without versions and the role assignments within it.

        Raises:
            ResourceNotFoundError: no such gallery or definition.
            PreconditionError: it still holds versions (the message says how many).
        """
        await self._db.write(lambda c: galleries.delete_definition(c, gallery, name))

    # --- image versions -----------------------------------------------------------------------

    async def create_version(self, v: GalleryImageVersion) -> None:
        """Store ``v``: profile, target regions in order, safety profile, blob and ``v.regions``.

        Raises:
            ResourceNotFoundError: its gallery or definition does not exist.
            AlreadyExistsError: the version exists.
            InvalidParameterError: a region is listed twice among the targets or the statuses,
                a datetime has no time zone, or the blob's manifest pin is incomplete (a size
                that is not a byte count, a SHA-256 that is not 64 lower-case hex characters).
        """
        await self._db.write(lambda c: versions.create_version(c, v))

    async def get_version(self, gallery: str, image: str, version: ImageVersion) -> GalleryImageVersion:
        """The version; ``regions`` holds status rows in target order, then untargeted ones.

        Raises:
            ResourceNotFoundError: no such gallery, definition or version (the message says which).
        """
        return await self._db.read(lambda c: versions.get_version(c, gallery, image, version))

    async def list_versions(self, gallery: str, image: str) -> list[GalleryImageVersion]:
        """The definition's versions in numeric order (1.0.9 before 1.0.12).

        Raises:
            ResourceNotFoundError: no such gallery or definition.
        """
        return await self._db.read(lambda c: versions.list_versions(c, gallery, image))

    async def update_version(self, v: GalleryImageVersion) -> None:
        """Replace location, profile, targets, safety, provisioning state and blob (with its pin).

        ``v.regions`` is ignored: regional status belongs to replication, which writes it
        with :meth:`set_region_status`.

        Raises:
            ResourceNotFoundError: no such gallery, definition or version.
            InvalidParameterError: a region is listed twice among the targets, or the blob's
                manifest pin is incomplete.
        """
        await self._db.write(lambda c: versions.update_version(c, v))

    async def reset_version(self, v: GalleryImageVersion, *, expected: ProvisioningState) -> None:
        """Replace the version like :meth:`update_version`, and its regional status with
        ``v.regions``, if its provisioning state is still ``expected``.

        This is how a create that was interrupted (left Failed) is done again under the same
        name rather than refused as existing. Operations recorded for the version are kept.

        Raises:
            ResourceNotFoundError: no such gallery, definition or version.
            PreconditionError: the version is in another provisioning state (the message says which).
            InvalidParameterError: a region is listed twice among the targets or the statuses,
                or the blob's manifest pin is incomplete.
        """
        await self._db.write(lambda c: versions.reset_version(c, v, expected))

    async def unfinished_versions(self) -> list[GalleryImageVersion]:
        """Every version of every gallery that is Creating, Updating or Deleting, or is
        Replicating in some region, by gallery, image and number: what recovery looks at."""
        return await self._db.read(versions.unfinished_versions)

    async def delete_version(self, gallery: str, image: str, version: ImageVersion) -> None:
        """Delete the version with its status and the role assignments at it.

        Raises:
            ResourceNotFoundError: no such gallery, definition or version.
        """
        await self._db.write(lambda c: versions.delete_version(c, gallery, image, version))

    # --- regional status ----------------------------------------------------------------------

    async def set_region_status(
        self, gallery: str, image: str, version: ImageVersion, status: RegionStatus
    ) -> None:
        """Insert or replace the version's status in ``status.region``.

        Raises:
            ResourceNotFoundError: no such gallery, definition or version.
        """
        await self._db.write(lambda c: versions.set_region_status(c, gallery, image, version, status))

    async def delete_region_status(
        self, gallery: str, image: str, version: ImageVersion, region: str
    ) -> None:
        """Forget the version's status in ``region``; a region without status is already forgotten.

        Raises:
            ResourceNotFoundError: no such gallery, definition or version.
        """
        await self._db.write(lambda c: versions.delete_region_status(c, gallery, image, version, region))

    # --- operations ---------------------------------------------------------------------------

    async def begin_operation(
        self,
        gallery: str,
        image: str,
        version: ImageVersion,
        region: str,
        kind: OperationKind,
        owner: ProcessIdentity,
    ) -> Operation | None:
        """Record that ``owner`` runs ``kind`` on the version; ``region`` is ``""`` for its own
        provisioning operation. Returns None once recorded, or, writing nothing, the operation
        already recorded there, whose owner the caller must judge alive or dead.

        Raises:
            ResourceNotFoundError: no such gallery, definition or version.
            InvalidParameterError: ``kind`` is a replication and ``region`` is empty.
        """
        return await self._db.write(
            lambda c: operations.begin_operation(c, gallery, image, version, region, kind, owner)
        )

    async def take_over_operation(
        self, previous: Operation, kind: OperationKind, owner: ProcessIdentity
    ) -> bool:
        """Make ``owner`` the owner of ``previous`` (now a ``kind`` operation, started now) if
        it is still exactly as read; False if it changed meanwhile (a heartbeat, another
        takeover) or is gone. Of several takeovers of one ``previous``, one wins."""
        return await self._db.write(lambda c: operations.take_over_operation(c, previous, kind, owner))

    async def heartbeat_operation(
        self, gallery: str, image: str, version: ImageVersion, region: str, owner: ProcessIdentity
    ) -> bool:
        """Refresh the heartbeat of ``owner``'s operation; False if it is gone or belongs to
        another process (it was taken over): then ``owner`` must stop working on it."""
        return await self._db.write(
            lambda c: operations.heartbeat_operation(c, gallery, image, version, region, owner)
        )

    async def end_operation(
        self, gallery: str, image: str, version: ImageVersion, region: str, owner: ProcessIdentity
    ) -> None:
        """Forget ``owner``'s operation; one that is gone or belongs to another is left alone."""
        await self._db.write(lambda c: operations.end_operation(c, gallery, image, version, region, owner))

    async def list_operations(self) -> list[Operation]:
        """Every recorded operation, by gallery, image, version number and region. An owner
        that cannot be read is returned as :data:`~blobrep.core.operations.UNKNOWN_OWNER`.

        Raises:
            StorageError: a row holds an unknown kind or a start or heartbeat that is not a
                time (written by a newer blobrep, or edited by hand).
        """
        return await self._db.read(operations.list_operations)

    # --- principals and groups ----------------------------------------------------------------

    async def create_principal(self, p: Principal) -> None:
        """Store a new principal.

        Raises:
            AlreadyExistsError: a principal of that name exists.
        """
        await self._db.write(lambda c: principals.create_principal(c, p))

    async def get_principal(self, name: str) -> Principal:
        """The principal called ``name``.

        Raises:
            ResourceNotFoundError: no such principal.
        """
        return await self._db.read(lambda c: principals.get_principal(c, name))

    async def list_principals(self) -> list[Principal]:
        """Every principal, sorted by name."""
        return await self._db.read(principals.list_principals)

    async def delete_principal(self, name: str) -> None:
        """Delete the principal, its memberships (both ways), its role assignments and its tokens.

        Raises:
            ResourceNotFoundError: no such principal.
        """
        await self._db.write(lambda c: principals.delete_principal(c, name))

    async def add_member(self, group: str, member: str) -> None:
        """Make ``member`` (any principal, groups included) a direct member of ``group``.

        Raises:
            ResourceNotFoundError: either principal does not exist.
            InvalidParameterError: ``group`` is not a group, or ``member`` is ``group``.
            AlreadyExistsError: ``member`` already is a direct member.
        """
        await self._db.write(lambda c: principals.add_member(c, group, member))

    async def remove_member(self, group: str, member: str) -> None:
        """Remove ``member`` from ``group`` (nested groups are left alone).

        Raises:
            ResourceNotFoundError: no such group, or ``member`` is not a direct member.
        """
        await self._db.write(lambda c: principals.remove_member(c, group, member))

    async def list_members(self, group: str) -> list[str]:
        """The direct members of ``group``, sorted.

        Raises:
            ResourceNotFoundError: no such principal.
            InvalidParameterError: the principal is not a group.
        """
        return await self._db.read(lambda c: principals.list_members(c, group))

    async def memberships(self) -> dict[str, frozenset[str]]:
        """Every group (empty ones too) mapped to its direct members: what the access policy needs."""
        return await self._db.read(principals.memberships)

    # --- role assignments ---------------------------------------------------------------------

    async def create_assignment(self, a: RoleAssignment) -> None:
        """Grant ``a.role`` to ``a.principal`` at ``a.scope`` (the scope itself is not checked).

        Raises:
            ResourceNotFoundError: the principal does not exist.
            AlreadyExistsError: the principal already holds that role at that scope.
        """
        await self._db.write(lambda c: assignments.create_assignment(c, a))

    async def delete_assignment(self, a: RoleAssignment) -> None:
        """Remove the assignment.

        Raises:
            ResourceNotFoundError: there is no such assignment.
        """
        await self._db.write(lambda c: assignments.delete_assignment(c, a))

    async def list_assignments(
        self, *, scope: ResourceId | None = None, principal: str | None = None
    ) -> list[RoleAssignment]:
        """Assignments at exactly ``scope`` (not below it) and of ``principal``; both optional."""
        return await self._db.read(
            lambda c: assignments.list_assignments(c, scope=scope, principal=principal)
        )

    async def all_assignments(self) -> list[RoleAssignment]:
        """Every assignment, sorted by scope, principal and role."""
        return await self._db.read(assignments.list_assignments)

    # --- bearer tokens ------------------------------------------------------------------------

    async def create_token(self, stored: StoredToken) -> None:
        """Record a new token: its public part and the hash of its secret, never the secret.

        Raises:
            ResourceNotFoundError: its principal does not exist.
            InvalidParameterError: its principal is a group.
            AlreadyExistsError: a token with that id exists.
        """
        await self._db.write(lambda c: tokens.create_token(c, stored))

    async def find_token(self, token_id: str) -> StoredToken | None:
        """The token ``token_id`` with the hash of its secret; None if there is none (a token
        whose principal was deleted went with it)."""
        return await self._db.read(lambda c: tokens.find_token(c, token_id))

    async def list_tokens(self, principal: str | None = None) -> list[Token]:
        """Every token, or those of ``principal``, sorted by principal, creation time and id."""
        return await self._db.read(lambda c: tokens.list_tokens(c, principal))

    async def revoke_token(self, token_id: str, when: datetime) -> Token:
        """Revoke the token at ``when`` (one revoked before keeps its time) and return it.

        Raises:
            ResourceNotFoundError: no such token.
        """
        return await self._db.write(lambda c: tokens.revoke_token(c, token_id, when))

    # --- settings -----------------------------------------------------------------------------

    async def get_setting(self, key: str) -> str | None:
        """The value stored under ``key``, or None if it was never set."""
        return await self._db.read(lambda c: settings.get_setting(c, key))

    async def set_setting(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``, replacing any earlier value."""
        await self._db.write(lambda c: settings.set_setting(c, key, value))
