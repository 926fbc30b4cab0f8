"""The reconcile loop: every published version driven to its target regions and replica counts.

Beside the requests, the daemon runs one :class:`Reconciler`. A *pass* lists every version
of every gallery (as the home's bootstrap admin, who owns everything) and, for each published
one, compares what its publishing profile wants (each target region Completed with its
replica count) with the regional status the catalog holds. Regions that fall short go to
:meth:`~blobrep.service.GalleryService.replicate_version`, which copies only missing chunks,
into a version's regions in parallel; versions go :data:`VERSIONS_AT_ONCE` at a time. A pass
runs every ``interval`` seconds, and at once when :meth:`Reconciler.wake` is called (after a
version is created or updated through the API).

The catalog's status is trusted as the actual state between passes: reading every replica's
manifests every few seconds would cost far more than the drift it could find, and finding
damaged replicas is what scrub and ``fsck`` are for.

Safe beside other writers: replicate_version holds an operation row per region, so a region
that a CLI ``replicate`` (or another daemon) is copying is left to it, and a region whose
owner died is taken over. Cancelling the loop (shutdown) ends those rows and leaves the
region ``Replicating``, which the next pass, here or after a restart, resumes; a SIGKILL
leaves the rows behind, and recovery at the next service open moves them on.

Failures: a region that ends Failed is retried with the capped, jittered exponential
schedule of :class:`~blobrep.core.backoff.Backoff`, which scales with the interval (the
first retry after :data:`RETRY_FIRST_INTERVALS` intervals). After :data:`RETRY_ATTEMPTS`
failed attempts the loop gives up on it: it stays Failed with the details replication wrote,
and :meth:`Reconciler.gave_up` says so, until someone restarts it (it then leaves Failed) or
the daemon restarts. A version whose replication fails as a whole (no source replica can be
read) counts as one failed attempt for each region it was to fill. One version's failure
never stops the others or the loop; an exception that is not a blobrep error is a bug and
ends the loop with its traceback.

After each attempt at a version the loop settles its API operations, so a create or update
ends (Succeeded, or Failed once a region is given up on) when it happens, not when a client
next polls. Every state change the loop observes, every retry it schedules and every region
it gives up on is one structured log record on the ``blobrep.daemon`` logger.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final

import anyio

from blobrep.core.backoff import Backoff
from blobrep.core.gallery import GalleryImageVersion, ProvisioningState, RegionStatus, ReplicationState
from blobrep.core.ids import ResourceId
from blobrep.errors import BlobrepError, BusyError, ResourceNotFoundError
from blobrep.service.status_writer import copied_bytes

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from blobrep.core.version import ImageVersion
    from blobrep.service import GalleryService

logger = logging.getLogger("blobrep.daemon")

#: Seconds between two passes when nothing wakes the loop earlier.
DEFAULT_INTERVAL: Final = 2.0
#: Versions replicated at the same time in one pass (each copies into its regions in parallel).
VERSIONS_AT_ONCE: Final = 2
#: The first retry of a failed region waits this many intervals; each further one twice as long.
RETRY_FIRST_INTERVALS: Final = 5
#: The longest wait between two attempts at a failed region, in seconds.
RETRY_CAP: Final = 300.0
#: Failed attempts at a region (the first included) before the loop gives up on it.
RETRY_ATTEMPTS: Final = 5

_Key = tuple[str, str, str, str]
"""(gallery, image, version, region)."""


def retry_schedule(interval: float) -> Backoff:
    """The backoff of failed regions for a loop that runs every ``interval`` seconds."""
    first = RETRY_FIRST_INTERVALS * interval
    return Backoff(first=first, cap=max(RETRY_CAP, first), attempts=RETRY_ATTEMPTS)


@dataclasses.dataclass(slots=True)
class _Region:
    """What the loop knows of one version in one region."""

    state: ReplicationState
    behind_since: float | None = None
    """Monotonic time the region was first seen needing work; None while it is whole."""
    failures: int = 0
    due: float = 0.0
    """Monotonic time before which the region is not tried again."""
    gave_up: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class ReconcileStatistics:
    """A snapshot of the loop, for ``/metrics``."""

    passes: int
    """Passes completed since the daemon started."""
    last_pass: float | None
    """Unix time the last pass completed; None before the first."""
    lag: float
    """See :meth:`Reconciler.lag`."""
    behind: int
    """Version regions that need work the loop still does (retries included)."""
    retrying: int
    """Of those, regions that failed and wait for a retry."""
    given_up: int
    """Regions left Failed after the last attempt."""


class Reconciler:
    """Drives every published version of the home to its target regions (see the module).

    ``draw`` gives the jitter's uniform numbers in ``[0, 1)`` and ``clock`` the monotonic
    seconds the schedule runs on; both are seams for tests. ``on_copied`` is told the stored
    bytes each replication writes into replicas, as it goes (the daemon's metrics).
    """

    def __init__(
        self,
        service: GalleryService,
        interval: float,
        *,
        backoff: Backoff | None = None,
        draw: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
        on_copied: Callable[[int], None] | None = None,
    ) -> None:
        self._service = service
        self._on_copied = on_copied
        self._interval = interval
        self._backoff = retry_schedule(interval) if backoff is None else backoff
        self._draw = draw
        self._clock = clock
        self._regions: dict[_Key, _Region] = {}
        self._wake = anyio.Event()
        self._passes = 0
        self._last_pass: float | None = None

    def wake(self) -> None:
        """Start a pass now (or right after the one running): a version was created or updated.

        Call it from the event loop, as request handlers run.
        """
        self._wake.set()

    def gave_up(self, gallery: str, image: str, version: str | ImageVersion, region: str) -> bool:
        """True if the loop stopped retrying ``version`` in ``region``: it failed for good."""
        known = self._regions.get((gallery, image, str(version), region))
        return known is not None and known.gave_up

    def lag(self) -> float:
        """Seconds since the oldest version region that still needs work was first seen
        needing it; 0 when every version is where it should be. Regions given up on are not
        counted: they are Failed, not behind."""
        since = [
            known.behind_since
            for known in self._regions.values()
            if known.behind_since is not None and not known.gave_up
        ]
        return max(0.0, self._clock() - min(since)) if since else 0.0

    @property
    def last_pass(self) -> float | None:
        """Unix time the last pass completed; None before the first."""
        return self._last_pass

    def statistics(self) -> ReconcileStatistics:
        behind = [known for known in self._regions.values() if known.behind_since is not None]
        return ReconcileStatistics(
            passes=self._passes,
            last_pass=self._last_pass,
            lag=self.lag(),
            behind=sum(not known.gave_up for known in behind),
            retrying=sum(known.failures > 0 and not known.gave_up for known in behind),
            given_up=sum(known.gave_up for known in behind),
        )

    async def run(self) -> None:
        """Pass after pass until cancelled."""
        while True:
            # A fresh event before the pass: a wake during it asks for one more pass after it.
            self._wake = anyio.Event()
            await self.reconcile_once()
            with anyio.move_on_after(self._interval):
                await self._wake.wait()

    async def reconcile_once(self) -> None:
        """One pass over every version of the home."""
        try:
            versions = await self._versions()
        except BlobrepError as exc:  # the catalog could not be read: the next pass tries again
            logger.warning("reconcile pass failed", extra={"event": "reconcile_failed", "details": str(exc)})
            return
        # What the loop knows of a version being updated or uploaded stays (its retries, how
        # long it has been behind); only deleted versions and regions no longer targeted go.
        targeted = {
            _key(version, target.name)
            for version in versions
            for target in version.publishing_profile.target_regions
        }
        for key in self._regions.keys() - targeted:
            del self._regions[key]
        queue = iter(
            version
            for version in versions
            if version.blob is not None and version.provisioning_state is ProvisioningState.SUCCEEDED
        )  # only a published version has something to copy
        async with anyio.create_task_group() as group:
            for _ in range(VERSIONS_AT_ONCE):
                group.start_soon(self._work_through, queue)
        self._passes += 1
        self._last_pass = time.time()

    async def _versions(self) -> list[GalleryImageVersion]:
        """Every version of the home, as its bootstrap admin sees them."""
        caller = self._service.bootstrap_admin
        found: list[GalleryImageVersion] = []
        for gallery in await self._service.list_galleries(caller):
            try:
                definitions = await self._service.list_definitions(caller, gallery.name)
            except ResourceNotFoundError:
                continue  # deleted while listing
            for definition in definitions:
                try:
                    found += await self._service.list_versions(caller, gallery.name, definition.name)
                except ResourceNotFoundError:
                    continue
        return found

    async def _work_through(self, queue: Iterator[GalleryImageVersion]) -> None:
        for version in queue:  # shared by the workers: each version goes to one of them
            await self._reconcile(version)

    async def _reconcile(self, version: GalleryImageVersion) -> None:
        """Observe the version's regions, then replicate those that need work and may be tried."""
        now = self._clock()
        regions: list[str] = []
        retry_failed = False
        for target in version.publishing_profile.target_regions:
            known = self._observe(version, target.name, attempted=False)
            if known.behind_since is None or known.gave_up or known.due > now:
                continue
            regions.append(target.name)
            retry_failed = retry_failed or known.state is ReplicationState.FAILED
        if not regions:
            return
        try:
            after = await self._service.replicate_version(
                self._service.bootstrap_admin,
                version.gallery,
                version.image,
                str(version.version),
                regions=regions,
                retry_failed=retry_failed,
                progress=None if self._on_copied is None else copied_bytes(self._on_copied),
            )
        except BusyError:
            return  # another live process holds the version: its regions are left to it
        except BlobrepError as exc:
            for region in regions:
                self._failed(version, region, self._regions[_key(version, region)], str(exc))
        else:
            for region in regions:
                self._observe(after, region, attempted=True)
        await self._settle(version)

    async def _settle(self, version: GalleryImageVersion) -> None:
        """Record the end of the API operations on ``version`` that this attempt finished, so
        their end time is when it happened, not when a client next polls."""
        resource = ResourceId.of_version(version.gallery, version.image, version.version)
        try:
            await self._service.settle_async_operations(resource, self._retries_over)
        except BlobrepError as exc:  # the next poll or pass records it
            logger.warning(
                "operations not settled",
                extra={"event": "settle_failed", "version": str(resource), "details": str(exc)},
            )

    def _retries_over(self, version: ResourceId, region: str) -> bool:
        assert version.gallery is not None and version.image is not None and version.version is not None
        return self.gave_up(version.gallery, version.image, version.version, region)

    def _observe(self, version: GalleryImageVersion, region: str, *, attempted: bool) -> _Region:
        """Record where ``version`` stands in ``region`` (after an attempt there if
        ``attempted``), log a change of state, and schedule or give up retries."""
        profile = version.publishing_profile
        target = profile.target(region)
        status = version.status(region) or RegionStatus(region)
        whole = (
            status.state is ReplicationState.COMPLETED
            and target is not None
            and status.completed_replicas >= profile.effective_replica_count(target)
        )
        key = _key(version, region)
        known = self._regions.get(key)
        if known is None:
            known = self._regions[key] = _Region(status.state)
            if not whole:
                _log_state(version, status, None)
        elif known.state is not status.state:
            _log_state(version, status, known.state)
            if known.state is ReplicationState.FAILED and not attempted:
                known.failures, known.gave_up, known.due = 0, False, 0.0  # someone restarted it
            known.state = status.state
        if whole:
            known.behind_since, known.failures, known.gave_up, known.due = None, 0, False, 0.0
            return known
        if known.behind_since is None:
            known.behind_since = self._clock()
        if status.state is ReplicationState.FAILED and (attempted or known.failures == 0):
            self._failed(version, region, known, status.details)
        return known

    def _failed(self, version: GalleryImageVersion, region: str, known: _Region, details: str) -> None:
        """Count one more failed attempt at ``region``: schedule the next, or give up."""
        known.failures += 1
        if self._backoff.exhausted(known.failures):
            known.gave_up = True
            logger.warning(
                "region gave up",
                extra={
                    "event": "region_gave_up",
                    "version": _id(version),
                    "region": region,
                    "attempts": known.failures,
                    "details": f"{details} (gave up after {known.failures} attempts)",
                },
            )
            return
        delay = self._backoff.delay(known.failures, self._draw())
        known.due = self._clock() + delay
        logger.info(
            "region retry",
            extra={
                "event": "region_retry",
                "version": _id(version),
                "region": region,
                "attempts": known.failures,
                "retry_in": round(delay, 3),
                "details": details,
            },
        )


def _key(version: GalleryImageVersion, region: str) -> _Key:
    return (version.gallery, version.image, str(version.version), region)


def _id(version: GalleryImageVersion) -> str:
    return str(ResourceId.of_version(version.gallery, version.image, version.version))


def _log_state(version: GalleryImageVersion, status: RegionStatus, old: ReplicationState | None) -> None:
    logger.info(
        "region state",
        extra={
            "event": "region_state",
            "version": _id(version),
            "region": status.region,
            "old_state": None if old is None else str(old),
            "new_state": str(status.state),
            "details": status.details,
        },
    )


@asynccontextmanager
async def running(app: Starlette, interval: float | None) -> AsyncIterator[None]:
    """The reconcile loop of ``app``'s service for the body of the ``async with``, a pass every
    ``interval`` seconds, at ``app.state.reconciler``; None runs no loop and sets nothing
    there (then nothing retries a Failed region: routes read its absence so).

    Leaving the block cancels the loop; a replication it interrupts ends its operation rows
    and stays ``Replicating``, to be resumed by the next pass after a restart.
    """
    if interval is None:
        yield
        return
    metrics = getattr(app.state, "metrics", None)
    reconciler = Reconciler(
        app.state.service, interval, on_copied=None if metrics is None else metrics.replicated
    )
    app.state.reconciler = reconciler
    async with anyio.create_task_group() as group:
        group.start_soon(reconciler.run)
        yield
        group.cancel_scope.cancel()
