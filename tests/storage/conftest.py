"""Fixtures for the object-store tests: real S3 and Azure servers, found through the environment.

``python3 tools/dev.py services start`` starts the servers (SeaweedFS's S3 gateway and
Azurite on loopback) and prints the variables to export: the client's own (``AWS_*``,
``AZURE_*``, read by obstore) and the test buckets (``BLOBREP_TEST_S3_URL``,
``BLOBREP_TEST_AZURE_URL``). A missing variable fails the test that needs it: an object-store
test that silently skips is a feature nobody checks.

Each test gets a fresh prefix of its own under the test bucket, removed afterwards with
obstore directly, so cleaning up does not depend on the store under test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from blobrep.storage.object_url import ObjectKind, ObjectUrl
from tests.object_servers import bucket_of, fresh_prefix, remove_prefix


@pytest.fixture(params=["s3", "azure"])
def object_kind(request: pytest.FixtureRequest) -> ObjectKind:
    kind: ObjectKind = request.param
    return kind


@pytest.fixture
def bucket_url(object_kind: ObjectKind) -> ObjectUrl:
    """The test bucket or container of the ``object_kind`` server."""
    return bucket_of(object_kind)


@pytest.fixture
async def object_url(bucket_url: ObjectUrl) -> AsyncIterator[ObjectUrl]:
    """A fresh, empty prefix under the test bucket, removed after the test."""
    url = fresh_prefix(bucket_url.kind)
    yield url
    await remove_prefix(url)
