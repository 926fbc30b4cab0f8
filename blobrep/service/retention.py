"""Carrying out a definition's retention policy (:mod:`blobrep.core.retention`).

The policy acts when a version of the definition completes everywhere (after a publish or a
replication), and when the policy itself is set or changed: each older version it shrinks is
updated as a caller would update it (its new targets recorded first, then the replicas it no
longer wants removed and their unshared chunks collected at once), and marked with what was
done and when. A version the policy cannot shrink is marked with why, once: the same reason is
not written again on every completion.

The policy never fails the work that triggered it. A version another process is updating is
left for the next trigger; any other trouble is recorded on the version for ``show`` to say.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import TYPE_CHECKING

import anyio

from blobrep.core.gallery import AggregatedState, GalleryImageVersion, RetentionMark
from blobrep.core.ids import ResourceId
from blobrep.core.regions import plan_target_update
from blobrep.core.retention import (
    NOT_SHRUNK,
    RetentionStep,
    older_than_kept,
    plan_regrowth,
    plan_retention,
    stale_mark,
)
from blobrep.errors import BlobrepError, BusyError
from blobrep.service.version_updates import _VersionUpdates

if TYPE_CHECKING:
    from blobrep.service.version_options import VersionOptions

_log = logging.getLogger(__name__)


class _Retention(_VersionUpdates):
    async def update_version(
        self, caller: str, gallery: str, image: str, version: str, options: VersionOptions
    ) -> GalleryImageVersion:
        """:meth:`_VersionUpdates.update_version`, then the definition's retention policy
        applied again: an update may be what let the policy shrink a version (its safety
        profile now allows deleting replicated locations) or what ends its reason to."""
        updated = await super().update_version(caller, gallery, image, version, options)
        await self._after_completion(updated)
        return await self._catalog.get_version(gallery, image, updated.version)

    async def _after_completion(self, version: GalleryImageVersion) -> None:
        """Apply the retention policy of ``version``'s definition if it is now Completed
        everywhere: the moment an older version may leave the global set."""
        try:
            done = await self._catalog.get_version(version.gallery, version.image, version.version)
        except BlobrepError as exc:
            _log.warning("retention policy of %s/%s not applied: %s", version.gallery, version.image, exc)
            return
        if done.aggregated_state is AggregatedState.COMPLETED:
            await self._retention_after(version.gallery, version.image)

    async def _retention_after(self, gallery: str, image: str) -> None:
        """Apply the definition's retention policy after a change to it, never failing the work
        that changed it: the next trigger retries."""
        try:
            await self._apply_retention(gallery, image)
        except BlobrepError as exc:
            _log.warning("retention policy of %s/%s not applied: %s", gallery, image, exc)

    async def _apply_retention(self, gallery: str, image: str) -> list[GalleryImageVersion]:
        """Grow back the versions of ``gallery``/``image`` its retention policy keeps global
        again, then shrink those it wants shrunk, and bring stale marks up to date.

        Returns the versions it changed. Errors are recorded on the versions, not raised.
        """
        definition = await self._catalog.get_definition(gallery, image)
        policy = definition.retention_policy
        if policy is None:
            return []
        expired_at = self._now() if definition.exclude_end_of_life_from_latest else None
        versions = await self._catalog.list_versions(gallery, image)
        changed = [
            grown
            for step in plan_regrowth(policy, versions, expired_at)
            if (grown := await self._carry_out(step)) is not None
        ]
        if changed:
            versions = await self._catalog.list_versions(gallery, image)
        steps = plan_retention(policy, versions, expired_at)
        older = {version.version for version in older_than_kept(policy, versions, expired_at)}
        due = {step.version.version for step in steps}
        for version in versions:
            details = stale_mark(policy, version, due=version.version in due, older=version.version in older)
            if details is not None:
                with contextlib.suppress(BusyError):
                    await self._refresh_mark(version, details)
        for step in steps:
            if (shrunk := await self._carry_out(step)) is not None:
                changed.append(shrunk)
        return changed

    async def _carry_out(self, step: RetentionStep) -> GalleryImageVersion | None:
        """Change the version of ``step`` to its targets, or mark why it stays; the version
        changed, or None. Never raises what the version's trouble is: that is marked on it."""
        gallery, image = step.version.gallery, step.version.image
        try:
            if step.targets is not None:
                return await self._retarget(step)
            await self._mark(step.version, shrunk=step.shrunk, details=step.details)
        except BusyError:
            pass  # another live process is changing it; the next trigger retries
        except BlobrepError as exc:
            with anyio.CancelScope(shield=True), contextlib.suppress(BlobrepError):
                version_id = ResourceId.of_version(gallery, image, step.version.version)
                _log.warning("retention policy could not finish with %s: %s", version_id, exc)
                # Once the new targets are recorded the change stands (recovery removes the
                # replicas left over, replication fills the regions added) and its mark says
                # so; before that, say why not.
                fresh = await self._catalog.get_version(gallery, image, step.version.version)
                if fresh.publishing_profile.target_regions == step.version.publishing_profile.target_regions:
                    what = "not grown back" if step.grows else NOT_SHRUNK
                    await self._mark(fresh, shrunk=False, details=f"{what}: {exc}")
        return None

    async def _refresh_mark(self, version: GalleryImageVersion, details: str) -> None:
        """Rewrite a stale mark (:func:`~blobrep.core.retention.stale_mark`): to say the version
        is shrunk (``details``), or to clear it (``""``)."""
        if details:
            await self._mark(version, shrunk=True, details=details)
            return
        fresh = await self._catalog.get_version(version.gallery, version.image, version.version)
        await self._catalog.update_version(dataclasses.replace(fresh, retention=None))

    async def _retarget(self, step: RetentionStep) -> GalleryImageVersion:
        """Give the version of ``step`` its targets, as an update would: shrunk (its earlier
        targets kept in the mark, to grow it back to) or grown back (regions added wait for
        replication)."""
        assert step.targets is not None
        old = step.version
        regions = await self._regions()
        targets = tuple(target for target in step.targets if target.name in regions)  # a region since removed
        plan = plan_target_update(
            old.publishing_profile,
            targets,
            new_replica_count=None,
            allow_deletion=old.safety_profile.allow_deletion_of_replicated_locations,
            location=old.location,
        )
        previous = old.publishing_profile.target_regions if step.shrinks else ()
        mark = RetentionMark(self._now(), step.shrinks, step.details, previous)
        return await self._record_update(old, plan.profile, old.safety_profile, plan.rescaled, mark)

    async def _mark(self, version: GalleryImageVersion, *, shrunk: bool, details: str) -> None:
        """Record what the policy did to ``version``, unless it already says just that."""
        fresh = await self._catalog.get_version(version.gallery, version.image, version.version)
        mark = fresh.retention
        if mark is not None and mark.shrunk == shrunk and mark.details == details:
            return
        await self._catalog.update_version(
            dataclasses.replace(fresh, retention=RetentionMark(self._now(), shrunk, details))
        )
