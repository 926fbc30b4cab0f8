"""Which replicas of a region may hold data: per region, the highest replica number written to.

Replicas ``1..highest`` of a region are the ones that garbage collection, scrub, fsck and the
removal of a version or of replicas above a lowered count must visit. The catalog says so,
not a listing of the region's storage: an object store has no replica directories to list,
and a directory made by hand beside the replicas is no replica.

Whatever writes to replica ``n`` of a region raises the mark to ``n`` first, so a crash never
leaves data in a replica the catalog does not know of. The mark never falls: a region whose
replica count was lowered still holds data above the new count until it is removed, and a
mark that is too high only costs a visit to an empty replica.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from blobrep.errors import InvalidParameterError

if TYPE_CHECKING:
    from blobrep.catalog.db import Database


def highest(connection: sqlite3.Connection, region: str) -> int:
    """The highest replica number of ``region`` that may hold data; 0 if none was ever written."""
    row = connection.execute("SELECT highest FROM region_replicas WHERE region = ?", (region,)).fetchone()
    return 0 if row is None else int(row["highest"])


def raise_highest(connection: sqlite3.Connection, region: str, count: int) -> None:
    """Raise the mark of ``region`` to ``count`` unless it is that high already."""
    if count < 0:
        raise InvalidParameterError(f"a replica count is never negative ({count} for region {region!r})")
    connection.execute(
        "INSERT INTO region_replicas (region, highest) VALUES (?, ?)"
        " ON CONFLICT (region) DO UPDATE SET highest = max(highest, excluded.highest)",
        (region, count),
    )


class RegionReplicaTable:
    """The catalog's methods for the replicas of regions (mixed into :class:`Catalog`)."""

    _db: Database

    async def region_replicas(self, region: str) -> int:
        """The highest replica number of ``region`` that may hold data (0 when none may):
        replicas ``1..`` that number are the region's replicas."""
        from blobrep.catalog.reads import CatalogReads  # reads imports this module

        return await self._db.read(lambda c: CatalogReads(c, self._db.cache).region_replicas(region))

    async def note_region_replicas(self, region: str, count: int) -> None:
        """Record that replicas ``1..count`` of ``region`` may hold data, before writing to them;
        a lower ``count`` than recorded changes nothing (the mark never falls).

        Raises:
            InvalidParameterError: ``count`` is negative.
        """
        await self._db.write(lambda c: raise_highest(c, region, count))
