from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from blobrep.catalog import Catalog
from tests.catalog.helpers import definition, gallery


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "home" / "catalog.db"


@pytest.fixture
async def catalog(db_path: Path) -> AsyncIterator[Catalog]:
    """A fresh, empty catalog."""
    async with await Catalog.open(db_path) as opened:
        yield opened


@pytest.fixture
async def with_image(catalog: Catalog) -> Catalog:
    """The catalog holding gallery ``g`` with image definition ``img``."""
    await catalog.create_gallery(gallery("g"))
    await catalog.create_definition(definition("img", "g"))
    return catalog
