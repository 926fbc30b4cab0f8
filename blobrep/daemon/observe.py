"""Metrics and the request log (being built)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.middleware import Middleware
    from starlette.routing import Route


class Metrics:
    """The daemon's counters (being built)."""

    def uploaded(self, count: int) -> None:
        """``count`` more bytes of uploaded disk received."""

    def served(self, count: int) -> None:
        """``count`` more bytes of disk content sent."""


def routes() -> list[Route]:
    return []


def middleware() -> list[Middleware]:
    return []
