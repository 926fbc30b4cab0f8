"""Judging a running operation from its version: what a client polling it is told."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from blobrep.core.async_operations import AsyncStatus, judge
from blobrep.core.gallery import (
    BlobInfo,
    GalleryImageVersion,
    ProvisioningState,
    PublishingProfile,
    RegionStatus,
    ReplicationState,
    TargetRegion,
)
from blobrep.core.operations import OperationKind
from blobrep.core.version import ImageVersion

REGIONS = ("westus", "eastus", "northeurope")
BLOB = BlobInfo(10, "0" * 32, 5, 1, None)


def version(
    states: dict[str, tuple[ReplicationState, int]],
    provisioning: ProvisioningState = ProvisioningState.SUCCEEDED,
    blob: BlobInfo | None = BLOB,
) -> GalleryImageVersion:
    return GalleryImageVersion(
        gallery="g",
        image="i",
        version=ImageVersion(1, 0, 0),
        location="westus",
        publishing_profile=PublishingProfile(tuple(TargetRegion(name) for name in states)),
        provisioning_state=provisioning,
        blob=blob,
        regions=tuple(
            RegionStatus(name, state, progress, 1 if state is ReplicationState.COMPLETED else 0, 1, "why")
            for name, (state, progress) in states.items()
        ),
    )


def never(region: str) -> bool:
    return False


def always(region: str) -> bool:
    return True


def test_a_create_succeeds_only_once_every_region_is_completed() -> None:
    done = ReplicationState.COMPLETED, 100
    assert (
        judge(OperationKind.CREATE, version({"westus": done, "eastus": done}), never).status
        is AsyncStatus.SUCCEEDED
    )
    halfway = version({"westus": done, "eastus": (ReplicationState.REPLICATING, 40)})
    judged = judge(OperationKind.CREATE, halfway, never)
    assert (judged.status, judged.percent) == (AsyncStatus.IN_PROGRESS, 70)


def test_a_create_waiting_for_its_disk_is_in_progress() -> None:
    waiting = version({"westus": (ReplicationState.UNKNOWN, 0)}, ProvisioningState.CREATING, None)
    assert judge(OperationKind.CREATE, waiting, always).status is AsyncStatus.IN_PROGRESS


def test_a_failed_publish_fails_the_create_with_the_regions_details() -> None:
    failed = version({"westus": (ReplicationState.FAILED, 0)}, ProvisioningState.FAILED, None)
    judged = judge(OperationKind.CREATE, failed, never)
    assert judged.status is AsyncStatus.FAILED
    assert judged.error is not None and "westus: why" in judged.error.message


def test_a_failed_region_fails_the_operation_only_once_nothing_retries_it() -> None:
    record = version({"westus": (ReplicationState.COMPLETED, 100), "eastus": (ReplicationState.FAILED, 0)})
    assert judge(OperationKind.UPDATE, record, never).status is AsyncStatus.IN_PROGRESS
    judged = judge(OperationKind.UPDATE, record, lambda region: region == "eastus")
    assert judged.status is AsyncStatus.FAILED
    assert judged.error is not None and "eastus" in judged.error.message


def test_deletions_succeed_when_the_version_is_gone_and_creates_are_then_canceled() -> None:
    assert judge(OperationKind.DELETE, None, never).status is AsyncStatus.SUCCEEDED
    deleting = version({"westus": (ReplicationState.COMPLETED, 100)}, ProvisioningState.DELETING)
    assert judge(OperationKind.DELETE, deleting, never).status is AsyncStatus.IN_PROGRESS
    assert judge(OperationKind.CREATE, None, never).status is AsyncStatus.CANCELED


states = st.sampled_from(list(ReplicationState))


@given(st.lists(st.tuples(states, st.integers(0, 100)), min_size=1, max_size=3), st.booleans())
def test_an_operation_in_progress_never_claims_to_be_complete(
    rows: list[tuple[ReplicationState, int]], over: bool
) -> None:
    record = version(dict(zip(REGIONS, rows, strict=False)))
    judged = judge(OperationKind.CREATE, record, lambda region: over)
    assert 0 <= judged.percent <= 100
    if judged.status is AsyncStatus.IN_PROGRESS:
        assert judged.percent < 100
    if judged.status is AsyncStatus.SUCCEEDED:
        assert all(state is ReplicationState.COMPLETED for state, _ in rows)
    if ReplicationState.FAILED in [state for state, _ in rows] and over:
        assert judged.status is AsyncStatus.FAILED
