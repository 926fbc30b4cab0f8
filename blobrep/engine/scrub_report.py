"""What a scrub is told and what it reports: frozen values, apart from the scrub that makes them.

The service builds :class:`Expected` from the catalog and reads :class:`ScrubReport` back;
neither needs to know how :mod:`blobrep.engine.scrub` reads and repairs replicas.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from blobrep.core.disks import version_disks
from blobrep.core.gallery import BlobInfo, GalleryImageVersion, ReplicationState
from blobrep.core.keys import manifest_key

ProblemKind = Literal["missing", "corrupt", "manifest", "pack-missing", "pack-corrupt", "pack-size"]
"""What is wrong: a chunk stored as its own object is ``missing`` or ``corrupt``; a manifest
is damaged (``manifest``); a pack is missing, is not the bytes its name (their digest) says
(``pack-corrupt``, also a key that is not a regular file), or has another size than the
manifests record (``pack-size``)."""


@dataclass(frozen=True, slots=True)
class Expected:
    """What the catalog says of one version in this region: its manifest must be ``expect``'s,
    and the first ``replicas`` replicas of the region hold it."""

    expect: BlobInfo
    replicas: int

    @staticmethod
    def in_region(gallery: str, versions: Iterable[GalleryImageVersion], region: str) -> dict[str, Expected]:
        """Per manifest key, what ``region`` must hold of ``gallery``'s ``versions``: each disk
        (OS and data disks) of each version Completed there, with its pin, in as many replicas
        as completed."""
        expected: dict[str, Expected] = {}
        for version in versions:
            status = version.status(region)
            if not version.published or status is None or status.state is not ReplicationState.COMPLETED:
                continue
            for disk in version_disks(version):
                assert disk.info is not None  # published
                expected[manifest_key(gallery, disk.name)] = Expected(disk.info, status.completed_replicas)
        return expected


@dataclass(frozen=True, slots=True)
class ScrubProblem:
    """One thing wrong in one replica.

    ``key_or_digest`` is the chunk digest for ``missing`` and ``corrupt``, the manifest's
    storage key for ``manifest``, the pack's storage key for the ``pack-`` kinds (a pack is
    one object: a bad pack is one problem, however many chunks it holds). ``detail`` says
    what is wrong and, after a repair run, where the good copy came from or why there was
    none.
    """

    replica: str
    kind: ProblemKind
    key_or_digest: str
    detail: str
    repaired: bool = False


@dataclass(frozen=True, slots=True)
class ReplicaSummary:
    """What was checked in one replica."""

    replica: str
    manifests: int
    """Manifests of the gallery found, damaged ones included."""
    chunks_checked: int
    """Distinct chunks checked (a chunk several versions share counts once): one stored as its
    own object is read and verified alone, one in a pack through the check of its pack, so
    the count means the same whichever way the chunks are stored."""
    bytes_checked: int
    """Plain bytes of those chunks."""
    problems: int
    packs_checked: int = 0
    """Distinct packs read whole and checked by size and digest (one object, one problem if bad)."""
    pack_bytes_checked: int = 0
    """Stored bytes of those packs, as the manifests record them."""
    packed_chunks: int = 0
    """Of ``chunks_checked``, those checked through their pack."""


@dataclass(frozen=True, slots=True)
class ScrubReport:
    """The outcome of scrubbing one gallery in the replicas of one region."""

    gallery: str
    replicas: tuple[ReplicaSummary, ...]
    problems: tuple[ScrubProblem, ...]
    repaired: int
    unrepairable: int
    """Problems a repair run left as they were (the detail says why); 0 without repair."""
    damaged_blobs: tuple[str, ...] = ()
    """Manifest keys of the blobs some replica still cannot serve whole: its manifest is still
    bad there, or a chunk it names is (sorted)."""

    @property
    def ok(self) -> bool:
        """True if nothing is wrong any more: no problem, or every one repaired."""
        return all(problem.repaired for problem in self.problems)
