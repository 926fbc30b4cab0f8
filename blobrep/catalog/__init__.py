"""The catalog: SQLite metadata of the gallery hierarchy, replication status and access.

:class:`Catalog` is the whole public API; the modules beside it each hold one concept
(``galleries``, ``versions``, ``operations``, ``principals``, ``assignments``, ``settings``,
``tokens``, ``region_replicas``) as functions run inside a transaction, ``reads`` offers the
reads as plain calls (also without an event loop), ``db`` holds the connection and the
transactions, ``schema`` the numbered migrations. The catalog is a sibling of the engine:
neither imports the other.
"""

from typing import TYPE_CHECKING

from blobrep._exports import lazy_exports

if TYPE_CHECKING:
    from blobrep.catalog.catalog import Catalog
    from blobrep.catalog.schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "Catalog"]

# Lazy, so that a snapshot read (:mod:`blobrep.catalog.reads`) does not load the async catalog.
__getattr__ = lazy_exports(
    __name__, {"Catalog": "blobrep.catalog.catalog", "SCHEMA_VERSION": "blobrep.catalog.schema"}
)
