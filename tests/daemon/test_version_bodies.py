"""Version bodies into options: every field checked, read-only fields of a GET accepted."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blobrep.core.regions import parse_target_region
from blobrep.daemon.version_bodies import version_options
from blobrep.errors import InvalidParameterError

CONTENT = "/galleries/g/images/i/versions/1.0.0/content"

regions = st.sampled_from(["westus", "eastus2", "northeurope", "southeastasia"])
targets = st.fixed_dictionaries(
    {"name": regions},
    optional={
        "regionalReplicaCount": st.integers(1, 100),
        "storageAccountType": st.sampled_from(["Standard_LRS", "Premium_LRS", "standard_zrs"]),
        "excludeFromLatest": st.booleans(),
    },
)


@given(st.lists(targets, max_size=4, unique_by=lambda target: target["name"]))
def test_target_regions_become_the_tokens_the_cli_takes(given_targets: list[dict[str, Any]]) -> None:
    body = {"properties": {"publishingProfile": {"targetRegions": given_targets}}}
    options = version_options(body, content_path=CONTENT, create=True)
    assert options.target_regions is not None
    parsed = [parse_target_region(token) for token in options.target_regions]
    for target, region in zip(given_targets, parsed, strict=True):
        assert region.name == target["name"]
        assert region.replica_count == target.get("regionalReplicaCount")
        if "storageAccountType" in target:
            assert str(region.storage_type).lower() == target["storageAccountType"].lower()
    flags = {t["name"]: t["excludeFromLatest"] for t in given_targets if "excludeFromLatest" in t}
    assert (options.regional_exclude_from_latest or {}) == flags


def test_the_read_only_fields_of_a_get_are_accepted() -> None:
    body = {
        "id": "/galleries/g/images/i/versions/1.0.0",
        "name": "1.0.0",
        "type": "blobrep/galleries/images/versions",
        "location": "westus",
        "properties": {
            "provisioningState": "Succeeded",
            "replicationStatus": {"aggregatedState": "Completed", "summary": []},
            "publishingProfile": {"replicaCount": 2, "publishedDate": "2026-01-01T00:00:00Z"},
            "storageProfile": {"sizeInBytes": 5, "digest": "0" * 32, "storedBytes": 3, "chunks": 1},
        },
    }
    assert version_options(body, content_path=CONTENT, create=True).replica_count == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"properties": {"publishingProfile": {"targetRegions": {"name": "westus"}}}}, "targetRegions"),
        ({"properties": {"publishingProfile": {"targetRegions": ["westus"]}}}, "targetRegions[0]"),
        ({"properties": {"publishingProfile": {"targetRegions": [{"name": "a=2"}]}}}, "targetRegions[0]"),
        ({"properties": {"publishingProfile": {"replicaCount": True}}}, "replicaCount"),
        ({"properties": {"safetyProfile": {"allowDeletionOfReplicatedLocations": "yes"}}}, "allowDeletion"),
        (
            {"properties": {"storageProfile": {"osDiskImage": {"source": {"uri": "http://x/y"}}}}},
            "source.uri",
        ),
        ({"properties": {"storageProfile": {"dataDiskImages": {"lun": 0}}}}, "dataDiskImages"),
        ({"properties": {"storageProfile": {"dataDiskImages": [{"lun": 0, "caching": "x"}]}}}, "caching"),
        ({"tags": {}}, "tags"),
    ],
)
def test_a_wrong_field_is_named(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParameterError, match=field.replace("[", r"\[").replace("]", r"\]")):
        version_options(body, content_path=CONTENT, create=True)


def test_the_versions_own_upload_route_may_be_named_as_its_source() -> None:
    body = {"properties": {"storageProfile": {"osDiskImage": {"source": {"uri": "http://h:1" + CONTENT}}}}}
    assert version_options(body, content_path=CONTENT, create=True).target_regions is None
