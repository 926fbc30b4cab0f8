"""Crash recovery: moving on the versions whose operation's process died.

A process killed with SIGKILL (or a host that lost power) leaves the catalog where it was: a
version ``Creating`` or ``Deleting``, a region ``Replicating``. Each such state has an
operation row naming its owner (:mod:`blobrep.service.operations`); recovery looks at every
unfinished version and, where the owner is known dead (or there is no row at all: nobody
runs it), moves the state on:

* ``Creating`` with its source region waiting for its disk (recorded over HTTP, the upload
  not begun) and no operation row: nothing was running, and it is left to wait.
* ``Creating`` otherwise: the create was interrupted. The version becomes ``Failed`` with the source
  region's details saying so; running the same ``image-version create`` again redoes it,
  reusing every chunk the interrupted run wrote.
* ``Deleting``: the deletion is finished (manifests dropped from every region, then the record).
* ``Updating``: the new profile was written before any replica was touched; recovery removes
  what it no longer wants (replicas above a count, regions no longer targeted: manifests
  first, then their status) and the version is ``Succeeded`` again; ``replicate`` fills what
  it added.
* a region ``Replicating`` whose replication process died: its details say it was
  interrupted and the next ``replicate`` resumes it, copying only what is missing. (A region
  ``Replicating`` with no operation row is waiting for a replicate, not interrupted.)

A live operation in another process is left alone, whatever its age. Recovery takes each
version's operation row itself (a compare-and-swap) before acting, so two processes
recovering at once never both act on one version. ``replicate``, ``fsck`` and opening the
service run it.
"""

from __future__ import annotations

import dataclasses

from blobrep.core.gallery import GalleryImageVersion, ProvisioningState, ReplicationState
from blobrep.core.holders import Liveness
from blobrep.core.ids import ResourceId
from blobrep.core.operations import Operation, OperationKind
from blobrep.errors import BusyError, ResourceNotFoundError
from blobrep.service.operations import hold_operation, judge
from blobrep.service.version_options import failed_create, is_awaiting_disk
from blobrep.service.versions import _Versions

INTERRUPTED = "interrupted"

_KIND = {
    ProvisioningState.CREATING: OperationKind.CREATE,
    ProvisioningState.DELETING: OperationKind.DELETE,
    ProvisioningState.UPDATING: OperationKind.UPDATE,
}


@dataclasses.dataclass(frozen=True, slots=True)
class Recovered:
    """What recovery did to one version, in words; the version is kept apart, so that a report
    shows it only to callers who may see that version."""

    version: ResourceId
    what: str

    def __str__(self) -> str:
        return f"{self.version}: {self.what}"


class _Recovery(_Versions):
    _recovered: tuple[Recovered, ...] = ()
    """What recovery did when the service was opened, until ``fsck`` reports it."""

    async def recover(self) -> list[Recovered]:
        """Move on every operation whose process died; return what was done."""
        done: list[Recovered] = []
        unfinished = await self._catalog.unfinished_versions()
        if not unfinished:
            return done
        operations = await self._catalog.list_operations()
        for version in unfinished:
            rows = {
                op.region: op
                for op in operations
                if (op.gallery, op.image, op.version) == (version.gallery, version.image, version.version)
            }
            try:
                done += await self._recover_version(version, rows)
            except (BusyError, ResourceNotFoundError):
                continue  # someone else recovered or finished it meanwhile
        return done

    async def _recover_version(
        self, version: GalleryImageVersion, rows: dict[str, Operation]
    ) -> list[Recovered]:
        kind = _KIND.get(version.provisioning_state)
        provisioning = rows.get("")
        if kind is not None:
            if provisioning is not None and await judge(provisioning) is Liveness.ALIVE:
                return []  # its own operation is running: regions included
            if provisioning is None and is_awaiting_disk(version):
                return []  # recorded, waiting for its disk: nothing was running
            return [await self._recover_provisioning(version, kind, provisioning)]
        done: list[Recovered] = []
        for status in version.regions:
            if status.state is not ReplicationState.REPLICATING:
                continue
            row = rows.get(status.region)
            if row is None or await judge(row) is Liveness.ALIVE:
                continue  # no row: waiting for a replicate (a raised count), not interrupted
            who = row.describe()
            async with hold_operation(
                self._catalog,
                version.gallery,
                version.image,
                version.version,
                status.region,
                OperationKind.REPLICATE,
            ):
                details = f"{INTERRUPTED}: {who} stopped; the next replicate resumes it"
                await self._catalog.set_region_status(
                    version.gallery,
                    version.image,
                    version.version,
                    dataclasses.replace(status, details=details),
                )
            done.append(
                Recovered(_id(version), f"replication in {status.region} was {INTERRUPTED}; it resumes")
            )
        return done

    async def _recover_provisioning(
        self, version: GalleryImageVersion, kind: OperationKind, row: Operation | None
    ) -> Recovered:
        who = "its process" if row is None else row.describe()
        gallery, image, number = version.gallery, version.image, version.version
        async with hold_operation(self._catalog, gallery, image, number, "", kind):
            if kind is OperationKind.DELETE:
                await self._finish_delete(version)
                return Recovered(_id(version), f"an {INTERRUPTED} deletion was finished")
            if kind is OperationKind.UPDATE:
                await self._apply_profile(gallery, image, number)
                await self._catalog.update_version(
                    dataclasses.replace(version, provisioning_state=ProvisioningState.SUCCEEDED)
                )
                return Recovered(
                    _id(version), f"an {INTERRUPTED} update was finished; replicate applies what it added"
                )
            # A version created from another one has its source recorded from the start.
            doing = "publishing" if version.source_id is None else f"copying the disk of {version.source_id}"
            reason = f"{INTERRUPTED}: {who} died while {doing}; run the same create again to redo it"
            for status in version.regions:
                if status.state is ReplicationState.REPLICATING:
                    failed = dataclasses.replace(
                        status, state=ReplicationState.FAILED, progress=0, details=reason
                    )
                    await self._catalog.set_region_status(gallery, image, number, failed)
            await self._catalog.update_version(failed_create(version))
            await self._waiting_no_more(version)
            return Recovered(_id(version), f"an {INTERRUPTED} create is now Failed")


def _id(version: GalleryImageVersion) -> ResourceId:
    return ResourceId.of_version(version.gallery, version.image, version.version)
