"""What a scrub learns of each replica while it runs, before any of it is reported.

The records are mutable on purpose: reading manifests, checking chunks and packs and
repairing each add to them (a finding's detail grows with what the repair did), and only at
the end are they frozen into :class:`~blobrep.engine.scrub_report.ScrubProblem` values.

A replica's objects are kept by where they are: chunks stored as their own objects by
digest, packs by the :class:`~blobrep.core.packs.PackRef` the manifests name. A pack is
checked and repaired whole, so the chunks the manifests place in it are kept with it (to
count them, and to patch it with verified frames when no whole copy is left).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from blobrep.core.keys import pack_key

if TYPE_CHECKING:
    from blobrep.core.manifest import ChunkRef, Manifest
    from blobrep.core.packs import PackRef
    from blobrep.engine.scrub_report import ProblemKind
    from blobrep.storage.base import Store


@dataclass(slots=True)
class Finding:
    """One thing wrong in one replica, as found so far (a repair adds to ``detail``)."""

    kind: ProblemKind
    detail: str
    repaired: bool = False


@dataclass(slots=True)
class DamagedManifest:
    """A manifest that does not parse, and the siblings' copy that can stand in for it."""

    finding: Finding
    document: bytes | None = None
    source: str = ""
    why_not: str = ""


@dataclass(slots=True)
class ScrubbedPack:
    """A pack some manifests of a replica name, and the chunks they place in it."""

    ref: PackRef
    key: str
    chunks: dict[str, ChunkRef] = field(default_factory=dict)
    """Digest -> the manifest entry placing that chunk in this pack."""

    @property
    def plain_bytes(self) -> int:
        """Plain bytes of the chunks the manifests place in the pack."""
        return sum(chunk.length for chunk in self.chunks.values())


@dataclass(slots=True)
class ScrubbedReplica:
    """One replica under scrub: its manifests, the objects they name, and what is wrong."""

    store: Store
    manifests: int = 0
    damaged: dict[str, DamagedManifest] = field(default_factory=dict)
    chunks: dict[str, ChunkRef] = field(default_factory=dict)
    """Distinct chunks stored as their own objects: digest -> the first entry seen naming it."""
    packs: dict[PackRef, ScrubbedPack] = field(default_factory=dict)
    """Distinct packs named, each with the chunks placed in it."""
    named: dict[str, frozenset[str]] = field(default_factory=dict)
    """Manifest key -> the digests of the lone chunks that manifest (or its stand-in) names."""
    named_packs: dict[str, frozenset[PackRef]] = field(default_factory=dict)
    """Manifest key -> the packs that manifest (or its stand-in) names."""
    bad: dict[str, Finding] = field(default_factory=dict)
    bad_packs: dict[PackRef, Finding] = field(default_factory=dict)
    checked_chunks: int = 0
    checked_bytes: int = 0
    checked_packs: int = 0
    checked_pack_bytes: int = 0
    packed_chunks: int = 0

    def take(self, key: str, manifest: Manifest, gallery: str) -> None:
        """Record what the manifest at ``key`` (or the stand-in for it) says this replica holds."""
        lone: set[str] = set()
        for digest, chunk in manifest.stored_digests().items():
            if chunk.pack is None:
                lone.add(digest)
                self.chunks.setdefault(digest, chunk)
                continue
            pack = self.packs.get(chunk.pack)
            if pack is None:
                pack = self.packs[chunk.pack] = ScrubbedPack(chunk.pack, pack_key(gallery, chunk.pack.digest))
            pack.chunks.setdefault(digest, chunk)
        self.named[key] = frozenset(lone)
        self.named_packs[key] = frozenset(manifest.packs)

    def still_bad(self, key: str) -> bool:
        """True if an object the manifest at ``key`` names is bad here and not repaired."""
        chunks = (self.bad.get(digest) for digest in self.named.get(key, ()))
        packs = (self.bad_packs.get(ref) for ref in self.named_packs.get(key, ()))
        return any(found is not None and not found.repaired for found in (*chunks, *packs))

    def findings(self) -> list[tuple[str, Finding]]:
        """(manifest key, chunk digest or pack key; finding): damaged manifests first, then
        bad chunks, then bad packs, each group sorted."""
        damaged = sorted((key, damaged.finding) for key, damaged in self.damaged.items())
        chunks = sorted(self.bad.items(), key=lambda item: item[0])
        packs = sorted(
            ((self.packs[ref].key, one) for ref, one in self.bad_packs.items()), key=lambda item: item[0]
        )
        return damaged + chunks + packs
