"""``GalleryService``: the one object other services, the CLI and the daemon use for galleries."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import anyio.to_thread

from blobrep.catalog import Catalog
from blobrep.service._base import StoreWrapper, bootstrap
from blobrep.service.async_operations import _AsyncOperations
from blobrep.service.deployments import _Deployments
from blobrep.service.fsck import _Fsck
from blobrep.service.galleries import _Galleries
from blobrep.service.home import Home
from blobrep.service.regions import _Regions
from blobrep.service.replication import _Replication
from blobrep.service.sharing import _Sharing
from blobrep.service.tokens import _Tokens
from blobrep.service.version_copies import _VersionCopies
from blobrep.service.version_uploads import _VersionUploads


class GalleryService(
    _Galleries,
    _Regions,
    _Deployments,
    _VersionUploads,
    _VersionCopies,
    _Replication,
    _Fsck,
    _Sharing,
    _Tokens,
    _AsyncOperations,
):
    """Galleries, image definitions, versions, replication, deployments, regions, access and
    bearer tokens, in one home.

    Open it with ``async with await GalleryService.open(home) as service:``. Every method is
    async, takes the calling principal's name first, checks the caller's roles before doing
    anything, and raises only :mod:`blobrep.errors` types:

    * ``AccessDeniedError`` names the principal, the action and the scope;
    * ``InvalidInputError`` (and subclasses) for malformed names, versions, regions, counts;
    * ``ResourceNotFoundError`` / ``AlreadyExistsError`` for what does or does not exist,
      ``PreconditionError`` for a state that forbids the call (a gallery not empty);
    * ``BusyError`` (``retryable``) while another live operation holds what the call needs.

    The exception is :meth:`authenticate`, which finds the caller: it takes a bearer token and
    raises ``UnauthenticatedError`` for any token that does not name a principal.

    A fresh home is created on first use with default regions and a bootstrap admin
    (:attr:`bootstrap_admin`) who owns everything.
    """

    @classmethod
    async def open(cls, home: str | Path, *, wrap_store: StoreWrapper | None = None) -> GalleryService:
        """Open (creating if needed) the home; ``wrap_store`` wraps every replica store opened.

        Operations left unfinished by processes that died are moved on first (see
        :mod:`blobrep.service.recovery`).
        """
        where = Home(Path(home))
        await anyio.to_thread.run_sync(where.ensure)
        catalog = await Catalog.open(where.catalog_path)
        try:
            admin = await bootstrap(catalog)
            service = cls(where, catalog, admin, wrap_store)
            service._recovered = tuple(await service.recover())
        except BaseException:
            await catalog.close()
            raise
        return service

    async def close(self) -> None:
        await self._catalog.close()

    async def __aenter__(self) -> GalleryService:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
