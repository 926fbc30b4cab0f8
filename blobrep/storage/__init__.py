"""Storage adapters behind one protocol; nothing above this package sees ``OSError``.

Exports load on first use (:mod:`blobrep._exports`): a command that never touches a replica
does not pay for the local store's imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from blobrep._exports import lazy_exports

if TYPE_CHECKING:
    from blobrep.storage.base import ObjectInfo, Store
    from blobrep.storage.faulty import Fault, FaultyStore
    from blobrep.storage.local import LocalStore

__all__ = ["Fault", "FaultyStore", "LocalStore", "ObjectInfo", "Store"]

__getattr__ = lazy_exports(
    __name__,
    {
        "Fault": "blobrep.storage.faulty",
        "FaultyStore": "blobrep.storage.faulty",
        "LocalStore": "blobrep.storage.local",
        "ObjectInfo": "blobrep.storage.base",
        "Store": "blobrep.storage.base",
    },
)
