"""blobrep: store, replicate and serve VM-image blobs the way a cloud image gallery does.

The public API is :mod:`blobrep.service` (the facade other services call) and the error tree
in :mod:`blobrep.errors`; everything else is internal and may change.

The version is a literal, read by the build from here (``pyproject.toml`` names this attribute):
asking the installed package's metadata for it would cost every command's start the import of
``importlib.metadata`` and a scan of ``sys.path``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
