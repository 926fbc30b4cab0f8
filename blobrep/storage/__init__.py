"""Storage adapters behind one protocol; nothing above this package sees ``OSError``."""

from blobrep.storage.base import ObjectInfo, Store
from blobrep.storage.faulty import Fault, FaultyStore
from blobrep.storage.local import LocalStore

__all__ = ["Fault", "FaultyStore", "LocalStore", "ObjectInfo", "Store"]
