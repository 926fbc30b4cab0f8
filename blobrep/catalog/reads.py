"""The catalog's reads as plain calls inside one transaction, and a snapshot that needs no loop.

:class:`CatalogReads` wraps a connection that is inside a read transaction, so several reads
see one consistent state. The service gets one through :meth:`Catalog.read_with
<blobrep.catalog.Catalog.read_with>` (on the catalog's worker thread); a command that only
reads gets one from :func:`read_snapshot`, which opens the file with nothing but ``sqlite3``: no
event loop, no worker thread, nothing written. That is what makes ``blobrep ... show`` start
in a few tens of milliseconds; the same query functions (:mod:`blobrep.service.queries`)
serve both, so the two cannot disagree.

A snapshot is only ever a fast path. It gives None, and the caller takes the full path (which
creates, migrates, bootstraps and recovers as needed, and reports any error properly), when
the file is missing, is not a catalog of this schema version, or SQLite fails reading it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, TypeVar

from blobrep.catalog import assignments, galleries, principals, region_replicas, settings, tokens, versions
from blobrep.catalog.schema import APPLICATION_ID, SCHEMA_VERSION

if TYPE_CHECKING:
    from pathlib import Path

    from blobrep.catalog.read_cache import ReadCache
    from blobrep.core.access import Principal, RoleAssignment
    from blobrep.core.gallery import Gallery, GalleryImageVersion, ImageDefinition
    from blobrep.core.tokens import StoredToken
    from blobrep.core.version import ImageVersion

T = TypeVar("T")

#: Milliseconds a snapshot waits for a writer's lock (a checkpoint) before giving up.
_BUSY_TIMEOUT_MS = 10_000


class CatalogReads:
    """Reads of one transaction; each raises what the :class:`~blobrep.catalog.Catalog` method
    of the same name raises (``ResourceNotFoundError`` for what does not exist)."""

    __slots__ = ("_cache", "_connection")

    def __init__(self, connection: sqlite3.Connection, cache: ReadCache | None = None) -> None:
        self._connection = connection
        self._cache = cache

    def _kept(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, or the answer the connection's cache kept for this state of the
        catalog (see :mod:`blobrep.catalog.read_cache`)."""
        return compute() if self._cache is None else self._cache.answer(key, compute)

    def get_setting(self, key: str) -> str | None:
        return self._kept(("setting", key), lambda: settings.get_setting(self._connection, key))

    def region_replicas(self, region: str) -> int:
        return self._kept(
            ("region replicas", region), lambda: region_replicas.highest(self._connection, region)
        )

    def find_token(self, token_id: str) -> StoredToken | None:
        return self._kept(("token", token_id), lambda: tokens.find_token(self._connection, token_id))

    def get_principal(self, name: str) -> Principal:
        return self._kept(("principal", name), lambda: principals.get_principal(self._connection, name))

    def memberships(self) -> dict[str, frozenset[str]]:
        return dict(self._kept(("memberships",), lambda: principals.memberships(self._connection)))

    def all_assignments(self) -> list[RoleAssignment]:
        return list(
            self._kept(("assignments",), lambda: tuple(assignments.list_assignments(self._connection)))
        )

    def get_gallery(self, name: str) -> Gallery:
        return self._kept(("gallery", name), lambda: galleries.get_gallery(self._connection, name))

    def list_galleries(self) -> list[Gallery]:
        return list(self._kept(("galleries",), lambda: tuple(galleries.list_galleries(self._connection))))

    def get_definition(self, gallery: str, name: str) -> ImageDefinition:
        return self._kept(
            ("definition", gallery, name), lambda: galleries.get_definition(self._connection, gallery, name)
        )

    def list_definitions(self, gallery: str) -> list[ImageDefinition]:
        return list(
            self._kept(
                ("definitions", gallery), lambda: tuple(galleries.list_definitions(self._connection, gallery))
            )
        )

    def get_version(self, gallery: str, image: str, version: ImageVersion) -> GalleryImageVersion:
        return self._kept(
            ("version", gallery, image, version),
            lambda: versions.get_version(self._connection, gallery, image, version),
        )

    def list_versions(self, gallery: str, image: str) -> list[GalleryImageVersion]:
        return list(
            self._kept(
                ("versions", gallery, image),
                lambda: tuple(versions.list_versions(self._connection, gallery, image)),
            )
        )

    def unfinished_versions(self) -> list[GalleryImageVersion]:
        return versions.unfinished_versions(self._connection)


def read_snapshot(path: Path, query: Callable[[CatalogReads], T]) -> tuple[T] | None:
    """``(query(reads),)`` on the catalog at ``path`` in one read transaction, or None if the
    full path must do it (see the module docstring); what ``query`` raises propagates.

    Opened read-write but never written: a read-only connection could not take part in the
    write-ahead log's shared memory, which readers of a live catalog need.
    """
    try:
        connection = sqlite3.connect(
            f"{path.absolute().as_uri()}?mode=rw", uri=True, isolation_level=None, check_same_thread=False
        )
    except (sqlite3.Error, ValueError):
        return None
    try:
        connection.row_factory = sqlite3.Row
        if not _current(connection):
            return None
        connection.execute("BEGIN")
        return (query(CatalogReads(connection)),)
    except sqlite3.Error:
        return None
    finally:
        connection.close()


def _current(connection: sqlite3.Connection) -> bool:
    """True if the file is a catalog of exactly this schema version (no migration to run)."""
    try:
        connection.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        (application_id,) = connection.execute("PRAGMA application_id").fetchone()
        (version,) = connection.execute("PRAGMA user_version").fetchone()
    except sqlite3.Error:
        return False
    return bool(application_id == APPLICATION_ID and version == SCHEMA_VERSION)
