"""Asynchronous operations: starting one for a version write, and telling where it stands.

See :mod:`blobrep.core.async_operations`. Whoever may read the version may poll its
operations; an operation id names nothing to anyone else (the same words whether or not the
id exists, so ids cannot be probed). While an operation runs, each poll judges it from the
version; the first poll (or the daemon's reconcile pass) that finds it over records the end,
which stays when the version later changes or goes.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from blobrep.core.access import Action
from blobrep.core.async_operations import AsyncOperation, AsyncStatus, RetriesOver, judge
from blobrep.errors import AccessDeniedError, ResourceNotFoundError
from blobrep.service._base import _Base

if TYPE_CHECKING:
    from blobrep.core.ids import ResourceId
    from blobrep.core.operations import OperationKind


class _AsyncOperations(_Base):
    async def begin_async_operation(
        self, caller: str, kind: OperationKind, version: ResourceId
    ) -> AsyncOperation:
        """Record that ``caller`` started a ``kind`` write on ``version``, which goes on after
        the call that started it returns. The caller's right to the write was checked by it."""
        operation = AsyncOperation(
            id=str(uuid.uuid4()),
            kind=kind,
            resource=version,
            principal=caller,
            status=AsyncStatus.IN_PROGRESS,
            started=datetime.now(UTC),
        )
        await self._catalog.create_async_operation(operation)
        return operation

    async def async_operation(
        self, caller: str, operation_id: str, retries_over: RetriesOver
    ) -> AsyncOperation:
        """The operation ``operation_id`` as it stands now (Reader on its version).

        ``retries_over`` tells whether a Failed region will be retried (the daemon's reconcile
        loop knows); a region nothing retries ends the operation Failed.

        Raises:
            ResourceNotFoundError: no such operation, or the caller may not read its version.
        """
        authorizer = await self._authorizer(caller)
        operation = await self._catalog.find_async_operation(operation_id)
        unknown = ResourceNotFoundError(f"operation {operation_id!r} not found")
        if operation is None:
            raise unknown
        try:
            authorizer.check(Action.READ, operation.resource)
        except AccessDeniedError:
            raise unknown from None
        return await self._settle(operation, retries_over)

    async def settle_async_operations(
        self, version: ResourceId, retries_over: RetriesOver
    ) -> list[AsyncOperation]:
        """Judge every running operation on ``version`` and record those that are over."""
        running = await self._catalog.running_async_operations(version)
        return [await self._settle(operation, retries_over) for operation in running]

    async def _settle(self, operation: AsyncOperation, retries_over: RetriesOver) -> AsyncOperation:
        if operation.status is not AsyncStatus.IN_PROGRESS:
            return operation
        resource = operation.resource
        assert resource.gallery is not None and resource.image is not None and resource.version is not None
        try:
            version = await self._catalog.get_version(resource.gallery, resource.image, resource.version)
        except ResourceNotFoundError:
            version = None
        judged = judge(operation.kind, version, lambda region: retries_over(resource, region))
        if judged.status is AsyncStatus.IN_PROGRESS:
            return AsyncOperation(
                operation.id,
                operation.kind,
                operation.resource,
                operation.principal,
                judged.status,
                operation.started,
                percent=judged.percent,
            )
        ended = await self._catalog.end_async_operation(
            operation.id, judged.status, datetime.now(UTC), judged.percent, judged.error
        )
        return ended or operation
