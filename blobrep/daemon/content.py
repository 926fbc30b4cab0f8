"""Reading a version's disk: ``GET``/``HEAD .../versions/{v}/content`` (being built)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.routing import Route


def routes() -> list[Route]:
    return []


@asynccontextmanager
async def running(app: Starlette) -> AsyncIterator[None]:
    yield
