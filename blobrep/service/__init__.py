"""The library facade: what other Python services, the CLI and the daemon call.

* :class:`GalleryService` is the product: galleries, image definitions and versions,
  regions, principals and role assignments, every call checked against the caller's roles.
* :class:`BlobService` is the plumbing underneath: the blob pipeline over explicit stores,
  for scripts and debugging.

Exports load on first use (:mod:`blobrep._exports`): ``from blobrep.service import
GalleryService`` does not import the deployment engine or the publish pipeline; the methods
that need them import them when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from blobrep._exports import lazy_exports

if TYPE_CHECKING:
    from blobrep.core.chunking import ChunkingSpec
    from blobrep.core.selection import Policy
    from blobrep.core.stats import percentile
    from blobrep.core.synthetic import SyntheticImage, rewrite_runs
    from blobrep.engine.deploy import DeploymentResult, DeploymentSummary
    from blobrep.engine.publish import ProgressCallback, PublishResult
    from blobrep.engine.restore import RestoreResult
    from blobrep.engine.scrub import ScrubReport
    from blobrep.engine.verify import ChunkProblem, VerifyReport
    from blobrep.engine.version_read import ReaderStatistics, VersionReader
    from blobrep.service._base import StoreWrapper
    from blobrep.service.blobs import BlobService
    from blobrep.service.facade import GalleryService
    from blobrep.service.fsck_run import FsckProblem, FsckReport
    from blobrep.service.galleries import DefinitionFields
    from blobrep.service.regions import RegionInfo
    from blobrep.service.versions import VersionOptions
    from blobrep.storage.base import Store
    from blobrep.storage.local import LocalStore
    from blobrep.storage.throttled import ThrottledStore

__all__ = [
    "BlobService",
    "ChunkProblem",
    "ChunkingSpec",
    "DefinitionFields",
    "DeploymentResult",
    "DeploymentSummary",
    "FsckProblem",
    "FsckReport",
    "GalleryService",
    "LocalStore",
    "Policy",
    "ProgressCallback",
    "PublishResult",
    "ReaderStatistics",
    "RegionInfo",
    "RestoreResult",
    "ScrubReport",
    "Store",
    "StoreWrapper",
    "SyntheticImage",
    "ThrottledStore",
    "VerifyReport",
    "VersionReader",
    "VersionOptions",
    "percentile",
    "rewrite_runs",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "BlobService": "blobrep.service.blobs",
        "ChunkProblem": "blobrep.engine.verify",
        "ChunkingSpec": "blobrep.core.chunking",
        "DefinitionFields": "blobrep.service.galleries",
        "DeploymentResult": "blobrep.engine.deploy",
        "DeploymentSummary": "blobrep.engine.deploy",
        "FsckProblem": "blobrep.service.fsck_run",
        "FsckReport": "blobrep.service.fsck_run",
        "GalleryService": "blobrep.service.facade",
        "LocalStore": "blobrep.storage.local",
        "Policy": "blobrep.core.selection",
        "ProgressCallback": "blobrep.engine.publish",
        "PublishResult": "blobrep.engine.publish",
        "ReaderStatistics": "blobrep.engine.version_read",
        "RegionInfo": "blobrep.service.regions",
        "RestoreResult": "blobrep.engine.restore",
        "ScrubReport": "blobrep.engine.scrub",
        "Store": "blobrep.storage.base",
        "StoreWrapper": "blobrep.service._base",
        "SyntheticImage": "blobrep.core.synthetic",
        "ThrottledStore": "blobrep.storage.throttled",
        "VerifyReport": "blobrep.engine.verify",
        "VersionOptions": "blobrep.service.versions",
        "VersionReader": "blobrep.engine.version_read",
        "percentile": "blobrep.core.stats",
        "rewrite_runs": "blobrep.core.synthetic",
    },
)
