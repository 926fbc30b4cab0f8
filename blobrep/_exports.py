"""Package exports resolved on first use, so importing a package costs only what is used.

Every ``blobrep`` command starts a fresh interpreter, and its first fraction of a second is what
a user feels most. A package ``__init__`` that imported everything it exports would make
``blobrep --version`` load the whole engine (compression, chunking, the replica read path).
Instead a package names where each export lives and :func:`lazy_exports` gives it a module
``__getattr__`` (PEP 562) that imports that module the first time the name is asked for.
Type checkers see ordinary imports under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``homes[name]`` to find ``name``.

    The value is stored in the package's namespace, so later lookups cost nothing.
    """

    def __getattr__(name: str) -> Any:  # noqa: N807 - the PEP 562 hook has this name
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        setattr(importlib.import_module(package), name, value)
        return value

    return __getattr__
