"""blobrep: store, replicate and serve VM-image blobs the way a cloud image gallery does.

The public API is :mod:`blobrep.service` (the facade other services call) and the error tree
in :mod:`blobrep.errors`; everything else is internal and may change.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("blobrep")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
