"""Asynchronous operations in the catalog: recorded once, ended once, outliving their version."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from blobrep.catalog import Catalog
from blobrep.catalog.async_operations import KEEP_ENDED
from blobrep.core.async_operations import AsyncOperation, AsyncStatus, OperationError
from blobrep.core.ids import ResourceId
from blobrep.core.operations import OperationKind
from blobrep.core.version import ImageVersion
from blobrep.errors import AlreadyExistsError

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
VERSION = ResourceId.of_version("g", "i", ImageVersion(1, 0, 0))


def started(number: int, *, at: datetime = NOW, resource: ResourceId = VERSION) -> AsyncOperation:
    return AsyncOperation(
        id=f"op-{number}",
        kind=OperationKind.CREATE,
        resource=resource,
        principal="alice",
        status=AsyncStatus.IN_PROGRESS,
        started=at,
    )


async def test_an_operation_is_recorded_in_progress_and_found_by_id(catalog: Catalog) -> None:
    await catalog.create_async_operation(started(1))
    assert await catalog.find_async_operation("op-1") == started(1)
    assert await catalog.find_async_operation("op-2") is None
    with pytest.raises(AlreadyExistsError, match="op-1"):
        await catalog.create_async_operation(started(1))


async def test_the_first_end_is_the_one_kept(catalog: Catalog) -> None:
    await catalog.create_async_operation(started(1))
    failure = OperationError("ProvisioningFailed", "the upload ended short")
    ended = await catalog.end_async_operation(
        "op-1", AsyncStatus.FAILED, NOW + timedelta(seconds=5), 0, failure
    )
    assert ended is not None
    assert (ended.status, ended.ended, ended.error, ended.percent) == (
        AsyncStatus.FAILED,
        NOW + timedelta(seconds=5),
        failure,
        0,
    )
    again = await catalog.end_async_operation("op-1", AsyncStatus.SUCCEEDED, NOW + timedelta(seconds=9), 100)
    assert again == ended, "a later judgement must not rewrite how an operation ended"
    assert await catalog.running_async_operations(VERSION) == []


async def test_running_operations_are_listed_per_version_oldest_first(catalog: Catalog) -> None:
    other = ResourceId.of_version("g", "i", ImageVersion(2, 0, 0))
    await catalog.create_async_operation(started(2, at=NOW + timedelta(seconds=1)))
    await catalog.create_async_operation(started(1))
    await catalog.create_async_operation(started(3, resource=other))
    assert [op.id for op in await catalog.running_async_operations(VERSION)] == ["op-1", "op-2"]


async def test_long_ended_operations_are_dropped_as_new_ones_come(catalog: Catalog) -> None:
    await catalog.create_async_operation(started(1))
    await catalog.end_async_operation("op-1", AsyncStatus.SUCCEEDED, NOW, 100)
    await catalog.create_async_operation(started(2))
    await catalog.create_async_operation(started(3, at=NOW + KEEP_ENDED - timedelta(seconds=1)))
    assert await catalog.find_async_operation("op-1") is not None, "kept while it may still be polled"
    await catalog.create_async_operation(started(4, at=NOW + KEEP_ENDED + timedelta(seconds=1)))
    assert await catalog.find_async_operation("op-1") is None
    assert await catalog.find_async_operation("op-2") is not None, "a running one is never dropped"
