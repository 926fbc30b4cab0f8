"""Asynchronous operations: what a client polls after a write that finishes later.

A write to a version (create, update, delete) answers at once; the work goes on after the
response (the disk upload, replication to every target region, dropping replicas). The
client is handed an :class:`AsyncOperation`'s id and polls it, as with Azure Resource
Manager's ``Azure-AsyncOperation``. (Not to be confused with
:class:`~blobrep.core.operations.Operation`, the record of which process owns a version's
non-terminal state: one asynchronous operation may be carried by several of those, in
several processes, one after another.)

The record keeps only what cannot be derived: who asked for what, on which version, when,
and, once it is over, how it ended. While it runs, its status and percentage are judged from
the version itself (:func:`judge`), so they are right after a restart of the daemon and
whichever process did the work.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final

from blobrep.core.gallery import ProvisioningState, ReplicationState
from blobrep.core.ids import ResourceId
from blobrep.core.operations import OperationKind

if TYPE_CHECKING:
    from blobrep.core.gallery import GalleryImageVersion


class AsyncStatus(enum.StrEnum):
    """ARM's statuses of an asynchronous operation; all but ``InProgress`` are final."""

    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELED = "Canceled"


#: The kinds of write that answer with an asynchronous operation.
ASYNC_KINDS: Final = (OperationKind.CREATE, OperationKind.UPDATE, OperationKind.DELETE)


@dataclass(frozen=True, slots=True)
class OperationError:
    """How an operation failed: ARM's error code and the message the CLI would print."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class AsyncOperation:
    """One asynchronous operation, as recorded."""

    id: str
    kind: OperationKind
    resource: ResourceId
    """The version it works on."""
    principal: str
    """Who asked for it; it is shown to whoever may read the version."""
    status: AsyncStatus
    started: datetime
    ended: datetime | None = None
    error: OperationError | None = None
    percent: int | None = None
    """The percentage it ended at; None while it runs (then :func:`judge` says)."""


@dataclass(frozen=True, slots=True)
class Judgement:
    """Where an operation stands, judged from its version."""

    status: AsyncStatus
    percent: int
    error: OperationError | None = None


GaveUp = Callable[[str], bool]
"""Whether the retries of a Failed region (by name) are over: True if nothing will retry it."""

RetriesOver = Callable[[ResourceId, str], bool]
"""Whether nothing will retry a Failed region (by name) of a version (by id)."""


def judge(kind: OperationKind, version: GalleryImageVersion | None, gave_up: GaveUp) -> Judgement:
    """Where a running ``kind`` operation on ``version`` stands (None: the version is gone).

    * a deletion succeeds when the version is gone;
    * a create or update succeeds once the version is published and every target region is
      ``Completed`` with all its replicas; it fails when the publish failed, or when a region
      is ``Failed`` and nothing will retry it (``gave_up``); a create whose version was
      deleted meanwhile is ``Canceled``;
    * otherwise it is in progress, at the mean progress of the target regions.
    """
    if kind is OperationKind.DELETE:
        if version is None:
            return Judgement(AsyncStatus.SUCCEEDED, 100)
        if version.provisioning_state is ProvisioningState.DELETING:
            return Judgement(AsyncStatus.IN_PROGRESS, 50)
        return Judgement(
            AsyncStatus.FAILED,
            0,
            OperationError("Conflict", f"{_id(version)} is {version.provisioning_state}, not deleted"),
        )
    if version is None:
        return Judgement(
            AsyncStatus.CANCELED, 0, OperationError("Canceled", "the version was deleted before it finished")
        )
    if version.provisioning_state is ProvisioningState.FAILED:
        return Judgement(AsyncStatus.FAILED, 0, OperationError("ProvisioningFailed", _failure(version)))
    statuses = version.regions
    percent = round(sum(status.progress for status in statuses) / len(statuses)) if statuses else 0
    for status in statuses:
        if status.state is ReplicationState.FAILED and gave_up(status.region):
            message = f"{_id(version)} failed in {status.region}: {status.details or 'no details'}"
            return Judgement(AsyncStatus.FAILED, percent, OperationError("ReplicationFailed", message))
    settled = version.provisioning_state is ProvisioningState.SUCCEEDED and version.blob is not None
    if settled and all(_complete(version, status.region) for status in statuses):
        return Judgement(AsyncStatus.SUCCEEDED, 100)
    return Judgement(AsyncStatus.IN_PROGRESS, min(percent, 99))


def _complete(version: GalleryImageVersion, region: str) -> bool:
    status = version.status(region)
    return (
        status is not None
        and status.state is ReplicationState.COMPLETED
        and status.completed_replicas >= status.target_replicas
    )


def _failure(version: GalleryImageVersion) -> str:
    details = [f"{status.region}: {status.details}" for status in version.regions if status.details]
    reason = "; ".join(details) if details else "no details recorded"
    return f"{_id(version)} could not be created: {reason}"


def _id(version: GalleryImageVersion) -> str:
    return str(ResourceId.of_version(version.gallery, version.image, version.version))
