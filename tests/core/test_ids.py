"""Resource ids: parsing, printing, kinds and the lineage that role scopes follow."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blobrep.core.ids import ResourceId, ResourceKind
from blobrep.core.version import ImageVersion
from blobrep.errors import InvalidInputError, InvalidNameError, InvalidVersionError
from tests.core import strategies

galleries = strategies.gallery_names(20)
images = strategies.image_names(20)

resource_ids = st.one_of(
    st.just(ResourceId.home()),
    st.builds(ResourceId.of_gallery, galleries),
    st.builds(ResourceId.of_image, galleries, images),
    st.builds(ResourceId.of_version, galleries, images, strategies.versions),
    st.builds(lambda g, i: ResourceId(g, i, latest=True), galleries, images),
)


@given(resource=resource_ids)
def test_ids_round_trip_through_text(resource: ResourceId) -> None:
    assert ResourceId.parse(str(resource)) == resource
    assert str(ResourceId.parse(str(resource))) == str(resource)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("/", ResourceKind.HOME),
        ("/galleries/prod", ResourceKind.GALLERY),
        ("/galleries/prod/images/ubuntu-22.04", ResourceKind.IMAGE_DEFINITION),
        ("/galleries/prod/images/ubuntu-22.04/versions/1.0.12", ResourceKind.IMAGE_VERSION),
        ("/galleries/prod/images/ubuntu-22.04/versions/latest", ResourceKind.IMAGE_VERSION),
    ],
)
def test_each_level_has_its_kind(text: str, kind: ResourceKind) -> None:
    resource = ResourceId.parse(text)
    assert resource.kind is kind
    assert str(resource) == text


def test_a_version_id_carries_its_parts() -> None:
    resource = ResourceId.parse("/galleries/prod/images/ubuntu/versions/1.0.12")
    assert (resource.gallery, resource.image, resource.version) == ("prod", "ubuntu", ImageVersion(1, 0, 12))
    assert not resource.latest
    latest = ResourceId.parse("/galleries/prod/images/ubuntu/versions/latest")
    assert latest.latest
    assert latest.version is None


def test_the_lineage_runs_from_the_id_up_to_the_home() -> None:
    resource = ResourceId.parse("/galleries/prod/images/ubuntu/versions/1.0.0")
    assert [str(ancestor) for ancestor in resource.lineage()] == [
        "/galleries/prod/images/ubuntu/versions/1.0.0",
        "/galleries/prod/images/ubuntu",
        "/galleries/prod",
        "/",
    ]
    assert ResourceId.home().parent is None


@given(resource=resource_ids)
def test_every_ancestor_contains_the_id_and_not_the_other_way(resource: ResourceId) -> None:
    lineage = resource.lineage()
    assert lineage[0] == resource
    assert lineage[-1] == ResourceId.home()
    for ancestor in lineage:
        assert ancestor.contains(resource)
    for ancestor in lineage[1:]:
        assert not resource.contains(ancestor)


@given(first=resource_ids, second=resource_ids)
def test_containment_is_lineage_membership(first: ResourceId, second: ResourceId) -> None:
    assert first.contains(second) is (first in second.lineage())
    if first.contains(second) and second.contains(first):
        assert first == second


def test_a_role_on_one_gallery_does_not_reach_another() -> None:
    prod = ResourceId.of_gallery("prod")
    assert prod.contains(ResourceId.parse("/galleries/prod/images/ubuntu/versions/1.0.0"))
    assert not prod.contains(ResourceId.parse("/galleries/prod2/images/ubuntu"))
    assert not ResourceId.of_image("prod", "ubuntu").contains(ResourceId.of_image("prod", "debian"))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "//",
        "galleries/prod",
        "/galleries",
        "/galleries/",
        "/galleries/prod/",
        "/gallery/prod",
        "/Galleries/prod",
        "/galleries/prod/image/ubuntu",
        "/galleries/prod/images",
        "/galleries/prod/images/ubuntu/version/1.0.0",
        "/galleries/prod/images/ubuntu/versions",
        "/galleries/prod/images/ubuntu/versions/1.0.0/extra",
        "/galleries//images/ubuntu",
    ],
)
def test_malformed_ids_are_refused_showing_the_shape(text: str) -> None:
    with pytest.raises(InvalidNameError) as caught:
        ResourceId.parse(text)
    message = str(caught.value)
    assert repr(text) in message
    assert "/galleries/{gallery}/images/{definition}/versions/{X.Y.Z|latest}" in message


@pytest.mark.parametrize("text", ["/galleries/prod/", "/galleries/prod/images/ubuntu/versions/1.0.0/"])
def test_a_trailing_slash_is_named_as_what_is_wrong(text: str) -> None:
    with pytest.raises(InvalidNameError, match="leave out the trailing '/'"):
        ResourceId.parse(text)


@pytest.mark.parametrize(
    "text", ["/galleries/my-gallery", "/galleries/prod/images/-ubuntu", "/galleries/../images/x"]
)
def test_ids_with_a_bad_name_are_refused_as_names(text: str) -> None:
    with pytest.raises(InvalidNameError):
        ResourceId.parse(text)


@pytest.mark.parametrize(
    "text", ["/galleries/prod/images/ubuntu/versions/1.0", "/galleries/prod/images/ubuntu/versions/Latest"]
)
def test_ids_with_a_bad_version_are_refused_as_versions(text: str) -> None:
    with pytest.raises(InvalidVersionError) as caught:
        ResourceId.parse(text)
    assert isinstance(caught.value, InvalidInputError)
    assert "MAJOR.MINOR.PATCH" in str(caught.value)
