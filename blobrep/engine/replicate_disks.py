"""Replicate every disk of a version: one reconcile pass per disk, one outcome per region.

A version is its OS disk and its data disks, each a blob with its own manifest. Each disk is
replicated by :func:`blobrep.engine.replicate.replicate`, which moves only the objects a
replica lacks (a disk sharing chunks with another, or already whole, costs little more than
a survey) and commits that disk's manifest last. The disks go one after the other; a region
that fails or is deferred on one disk gets no writes for the disks after it, so its outcome
is the first reason, named with the disk.

A region's outcome holds for the version as a whole: its completed replicas are those every
disk completed, and its figures are summed over the disks. Progress is reported per region
over every disk: bytes done on the disks before, plus the current disk's, out of those plus
the current disk's total and what the disks still to come store.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from blobrep.engine.replicate import replicate
from blobrep.engine.replicate_state import RegionOutcome, RegionProgress

if TYPE_CHECKING:
    from blobrep.core.gallery import BlobInfo
    from blobrep.core.names import BlobName
    from blobrep.engine.replicate_state import RegionProgressCallback, RegionTarget
    from blobrep.storage.base import Store


class DiskProgress:
    """Turns one disk's region reports into reports over every disk of the version: ``base``
    holds, per region, the bytes the disks before it moved; ``ahead`` is what the disks after
    it hold; only the ``last`` disk's report may say the region's replicas are complete."""

    def __init__(self, forward: RegionProgressCallback | None, base: dict[str, int], ahead: int, last: bool):
        self._forward = forward
        self._base = base
        self._ahead = ahead
        self._last = last

    def __call__(self, update: RegionProgress) -> None:
        if self._forward is None:
            return
        base = self._base.get(update.region, 0)
        self._forward(
            RegionProgress(
                update.region,
                base + update.done_bytes,
                base + update.total_bytes + self._ahead,
                update.completed_replicas if self._last else 0,
                update.target_replicas,
            )
        )


async def replicate_disks(
    sources: Sequence[Store],
    targets: Sequence[RegionTarget],
    gallery: str,
    disks: Sequence[tuple[BlobName, BlobInfo | None]],
    *,
    copy_tasks: int = 16,
    progress: RegionProgressCallback | None = None,
) -> list[RegionOutcome]:
    """Copy every disk of ``disks`` (each with what the catalog pinned of it) from the source
    replicas into every region of ``targets``; one outcome per target, in target order.

    Raises:
        What :func:`~blobrep.engine.replicate.replicate` raises, for the first disk no source
        replica has a usable manifest of.
    """
    if len(disks) == 1:
        ((name, info),) = disks
        return await replicate(
            sources, targets, gallery, name, expect=info, copy_tasks=copy_tasks, progress=progress
        )
    combined: dict[str, RegionOutcome] = {}
    base: dict[str, int] = {}
    live = list(targets)
    for position, (name, info) in enumerate(disks):
        if not live:
            break
        ahead = sum(later.stored_bytes for _, later in disks[position + 1 :] if later is not None)
        outcomes = await replicate(
            sources,
            live,
            gallery,
            name,
            expect=info,
            copy_tasks=copy_tasks,
            progress=DiskProgress(progress, base, ahead, position == len(disks) - 1),
        )
        for outcome in outcomes:
            base[outcome.region] = base.get(outcome.region, 0) + outcome.copied_bytes
            combined[outcome.region] = _merge(combined.get(outcome.region), outcome, name)
        live = [target for target in live if _whole(combined[target.region])]
    return [combined[target.region] for target in targets]


def _whole(outcome: RegionOutcome) -> bool:
    return (
        outcome.error is None
        and outcome.deferred is None
        and outcome.completed_replicas == outcome.target_replicas
    )


def _merge(before: RegionOutcome | None, outcome: RegionOutcome, name: BlobName) -> RegionOutcome:
    """``outcome`` of disk ``name`` added to the region's outcome over the disks before it."""
    if outcome.error is not None:
        outcome = dataclasses.replace(outcome, error=f"{name.disk}: {outcome.error}")
    elif outcome.deferred is None and outcome.completed_replicas < outcome.target_replicas:
        outcome = dataclasses.replace(
            outcome,
            error=f"{name.disk}: {outcome.completed_replicas} of {outcome.target_replicas} replicas complete",
        )
    if before is None:
        return outcome
    return RegionOutcome(
        outcome.region,
        min(before.completed_replicas, outcome.completed_replicas),
        outcome.target_replicas,
        before.copied_chunks + outcome.copied_chunks,
        before.copied_bytes + outcome.copied_bytes,
        before.error or outcome.error,
        before.deferred or outcome.deferred,
    )
