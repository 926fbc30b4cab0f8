"""Fixtures every test package may use: fresh prefixes on the object-store test servers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from blobrep.storage.object_url import ObjectKind, ObjectUrl
from tests.object_servers import fresh_prefix, remove_prefix


@pytest.fixture(params=["s3", "azure"])
async def object_prefix(request: pytest.FixtureRequest) -> AsyncIterator[ObjectUrl]:
    """A fresh prefix on the S3 server, then on the Azure one (the test runs for each),
    removed afterwards; fails the test if that server is not up."""
    kind: ObjectKind = request.param
    url = fresh_prefix(kind)
    yield url
    await remove_prefix(url)


@pytest.fixture
async def prefixes() -> AsyncIterator[dict[ObjectKind, ObjectUrl]]:
    """A fresh prefix on each object-store test server (S3 and Azure), removed after the test."""
    made: dict[ObjectKind, ObjectUrl] = {"s3": fresh_prefix("s3"), "azure": fresh_prefix("azure")}
    yield made
    for url in made.values():
        await remove_prefix(url)
