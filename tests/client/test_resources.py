"""ARM resources read back into the gallery model: the CLI prints the same document for a
resource whether the service handed it over directly or the daemon served it."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blobrep.client.errors import EndpointError
from blobrep.client.resources import (
    assignment_from,
    definition_from,
    gallery_from,
    member_from,
    principal_from,
    version_from,
)
from blobrep.core.access import Principal, PrincipalType, Role, RoleAssignment
from blobrep.core.gallery import (
    Architecture,
    Gallery,
    GalleryImageVersion,
    HyperVGeneration,
    ImageDefinition,
    ImageIdentifier,
    OsState,
    OsType,
    ProvisioningState,
    PublishingProfile,
    ResourceRange,
)
from blobrep.core.ids import ResourceId
from blobrep.core.version import ImageVersion
from blobrep.daemon import arm
from blobrep.daemon.sharing import assignment_resource, member_resource, principal_resource
from blobrep.service.views import assignment_view, definition_view, gallery_view, principal_view, version_view
from tests.catalog.strategies import gallery_image_versions, region_names, times
from tests.core.strategies import gallery_names, image_names, versions

texts = st.text(max_size=40)
counts = st.none() | st.integers(min_value=1, max_value=2**31 - 1)

galleries = st.builds(
    Gallery,
    name=gallery_names(20),
    location=region_names,
    description=texts,
    provisioning_state=st.sampled_from(ProvisioningState),
)

definitions = st.builds(
    ImageDefinition,
    gallery=gallery_names(20),
    name=image_names(20),
    identifier=st.builds(ImageIdentifier, texts, texts, texts),
    os_type=st.sampled_from(OsType),
    os_state=st.sampled_from(OsState),
    hyper_v_generation=st.sampled_from(HyperVGeneration),
    architecture=st.sampled_from(Architecture),
    recommended_vcpus=st.builds(ResourceRange, counts, counts),
    recommended_memory_gib=st.builds(ResourceRange, counts, counts),
    end_of_life=st.none() | times,
    description=texts,
    provisioning_state=st.sampled_from(ProvisioningState),
)

scopes = st.one_of(
    st.just(ResourceId.home()),
    st.builds(ResourceId.of_gallery, gallery_names(20)),
    st.builds(ResourceId.of_image, gallery_names(20), image_names(20)),
    st.builds(ResourceId.of_version, gallery_names(20), image_names(20), versions),
)


@given(galleries)
def test_a_gallery_reads_back_to_the_same_view(gallery: Gallery) -> None:
    view = gallery_view(gallery)
    assert gallery_view(gallery_from(arm.resource(view))) == view


@given(definitions)
def test_a_definition_reads_back_to_the_same_view(definition: ImageDefinition) -> None:
    view = definition_view(definition)
    assert definition_view(definition_from(arm.resource(view))) == view


@given(gallery_image_versions(gallery="gal", image="img"), st.booleans())
def test_a_version_reads_back_to_the_same_view(version: GalleryImageVersion, expanded: bool) -> None:
    """Each target region comes back with its effective count, storage type and flag as its
    own, and the view (what the CLI prints) derives the same from them; the replication
    status comes back when it was served (``$expand=ReplicationStatus``), and only then."""
    read = version_from(arm.resource(version_view(version, expand_replication=expanded)))
    assert version_view(read, expand_replication=expanded) == version_view(
        version, expand_replication=expanded
    )
    assert read.regions == (version.regions if expanded else ())


@given(st.builds(Principal, name=gallery_names(20), type=st.sampled_from(PrincipalType)))
def test_a_principal_reads_back_to_the_same_view(principal: Principal) -> None:
    assert principal_view(principal_from(principal_resource(principal))) == principal_view(principal)


@given(st.builds(RoleAssignment, principal=gallery_names(20), role=st.sampled_from(Role), scope=scopes))
def test_an_assignment_reads_back_to_the_same_view(assignment: RoleAssignment) -> None:
    read = assignment_from(assignment_resource(assignment))
    assert assignment_view(read) == assignment_view(assignment)


def test_a_member_reads_back_as_its_name() -> None:
    assert member_from(member_resource("admins", "alice")) == "alice"


def _gallery() -> dict[str, Any]:
    return arm.resource(gallery_view(Gallery("gal", "westcentralus")))


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (lambda doc: doc.pop("properties"), "'properties' is missing"),
        (lambda doc: doc.__setitem__("location", 7), "'location' is int '7'"),
        (lambda doc: doc["properties"].__setitem__("provisioningState", "Sleeping"), "'provisioningState'"),
        (lambda doc: doc.__setitem__("id", "/galleries/a/images/b"), "names no gallery"),
        (lambda doc: doc.__setitem__("id", "/nowhere"), "names no gallery"),
    ],
)
def test_a_damaged_resource_is_an_endpoint_error_naming_the_field(damage: Any, named: str) -> None:
    document = _gallery()
    damage(document)
    with pytest.raises(EndpointError, match=named):
        gallery_from(document)


def test_a_version_whose_counts_are_not_numbers_is_refused() -> None:
    version = GalleryImageVersion("g", "i", ImageVersion(1, 0, 0), "eastus", PublishingProfile(()))
    document = arm.resource(version_view(version))
    document["properties"]["publishingProfile"]["replicaCount"] = True
    with pytest.raises(EndpointError, match="'replicaCount' is bool"):
        version_from(document)
