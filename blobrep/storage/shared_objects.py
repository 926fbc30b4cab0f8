"""Object stores shared by everything in a process that reaches the same place.

Each :class:`~blobrep.storage.objects.ObjectStore` holds its own client: its connection
pool, its TLS sessions, its credential cache. A daemon asks for a region's replica store on
every request, and the CLI once per replica and command; building a client each time would
pay a new connection per request. So stores are kept here, keyed by everything that decides
what they reach and as whom: the URL, the name messages use, the options, and the
``AWS_*``/``AZURE_*`` environment variables (an edited environment gets a new client).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from blobrep.storage.object_url import ObjectUrl
    from blobrep.storage.objects import ObjectStore

#: Stores kept at most (least recently used go first): a few regions of a few replicas each.
MAX_STORES: Final = 256

_Key = tuple[str, str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]
_stores: OrderedDict[_Key, ObjectStore] = OrderedDict()
_lock = threading.Lock()  # region configurations are read on worker threads too


def shared_object_store(url: ObjectUrl, options: Mapping[str, str], *, name: str) -> ObjectStore:
    """The store for ``url`` named ``name`` with ``options``, made once and shared after.

    Raises:
        InvalidParameterError: an option obstore refuses (see :class:`ObjectStore`).
    """
    from blobrep.storage.objects import ObjectStore  # obstore loads only for object regions

    environment = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(("AWS_", "AZURE_"))))
    key = (str(url), name, tuple(sorted(options.items())), environment)
    with _lock:
        store = _stores.get(key)
        if store is not None:
            _stores.move_to_end(key)
            return store
    store = ObjectStore(url, config=options, name=name)
    with _lock:
        kept = _stores.setdefault(key, store)
        _stores.move_to_end(key)
        while len(_stores) > MAX_STORES:
            _stores.popitem(last=False)
    return kept
