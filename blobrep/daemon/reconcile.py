"""The reconcile loop (being built)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from starlette.applications import Starlette

DEFAULT_INTERVAL: Final = 2.0


@asynccontextmanager
async def running(app: Starlette, interval: float | None) -> AsyncIterator[None]:
    yield
