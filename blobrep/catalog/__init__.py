"""The catalog: SQLite metadata of the gallery hierarchy, replication status and access.

:class:`Catalog` is the whole public API; the modules beside it each hold one concept
(``galleries``, ``versions``, ``operations``, ``principals``, ``assignments``, ``settings``) as
functions run inside a transaction, ``db`` holds the connection and the transactions,
``schema`` the numbered migrations. The catalog is a sibling of the engine: neither imports
the other.
"""

from blobrep.catalog.catalog import Catalog
from blobrep.catalog.schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "Catalog"]
