"""What a scrub learns of each replica while it runs, before any of it is reported.

The records are mutable on purpose: reading manifests, checking chunks and repairing each
add to them (a finding's detail grows with what the repair did), and only at the end are
they frozen into :class:`~blobrep.engine.scrub_report.ScrubProblem` values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from blobrep.core.manifest import ChunkRef
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
    digests: frozenset[str] = frozenset()
    why_not: str = ""


@dataclass(slots=True)
class ScrubbedReplica:
    """One replica under scrub: its manifests, the chunks they name, and what is wrong."""

    store: Store
    manifests: int = 0
    damaged: dict[str, DamagedManifest] = field(default_factory=dict)
    chunks: dict[str, ChunkRef] = field(default_factory=dict)
    """Distinct chunks to check: digest -> the first manifest entry seen that names it."""
    named: dict[str, frozenset[str]] = field(default_factory=dict)
    """Manifest key -> the digests that manifest (or its stand-in) names."""
    bad: dict[str, Finding] = field(default_factory=dict)
    checked_chunks: int = 0
    checked_bytes: int = 0

    def findings(self) -> list[tuple[str, Finding]]:
        """(manifest key or digest, finding), damaged manifests first, each group sorted."""
        damaged = sorted((key, damaged.finding) for key, damaged in self.damaged.items())
        return damaged + sorted(self.bad.items(), key=lambda item: item[0])
