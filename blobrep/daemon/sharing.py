"""Principals, group members and role assignments (being built)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.routing import Route


def routes() -> list[Route]:
    return []
