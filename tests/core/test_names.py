"""Names of galleries, image definitions and blobs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blobrep.core.names import MAX_NAME_LENGTH, BlobName, validate_gallery_name, validate_image_name
from blobrep.core.version import ImageVersion
from blobrep.errors import InvalidInputError, InvalidNameError, InvalidVersionError
from tests.core import strategies

gallery_names = strategies.gallery_names(80)
image_names = strategies.image_names(80)
versions = strategies.versions


@given(name=gallery_names)
def test_gallery_names_of_the_pattern_are_accepted(name: str) -> None:
    assert validate_gallery_name(name) == name


@given(name=image_names)
def test_image_names_of_the_pattern_are_accepted(name: str) -> None:
    assert validate_image_name(name) == name


@pytest.mark.parametrize("name", ["g", "G1", "my_gallery", "my.gallery", "a_", "1", "prod.images_2024"])
def test_ordinary_gallery_names_are_accepted(name: str) -> None:
    assert validate_gallery_name(name) == name


@pytest.mark.parametrize("name", ["ubuntu-22.04", "win2022-datacenter", "a", "A_b.c-d9", "x-y_"])
def test_ordinary_image_names_are_accepted(name: str) -> None:
    assert validate_image_name(name) == name


COMMON_BAD = [
    "-a",
    "_a",
    ".a",
    "a.",
    "a-",
    "a b",
    "a/b",
    "..",
    ".",
    "a\\b",
    "a\x00",
    "a\n",
    "caf\u00e9",
    "\uff41",  # full-width a
    "\u0661",  # Arabic-Indic one
    "a:b",
    "a*",
]


@pytest.mark.parametrize("name", [*COMMON_BAD, "my-gallery", "a-b"])
def test_bad_gallery_names_are_refused_naming_them(name: str) -> None:
    with pytest.raises(InvalidNameError) as caught:
        validate_gallery_name(name)
    assert repr(name) in str(caught.value)
    assert "gallery" in str(caught.value)


@pytest.mark.parametrize("name", COMMON_BAD)
def test_bad_image_names_are_refused_naming_them(name: str) -> None:
    with pytest.raises(InvalidNameError) as caught:
        validate_image_name(name)
    assert repr(name) in str(caught.value)
    assert "image" in str(caught.value)


@pytest.mark.parametrize("validate", [validate_gallery_name, validate_image_name])
def test_empty_names_are_refused(validate: object) -> None:
    assert callable(validate)
    with pytest.raises(InvalidNameError, match="empty"):
        validate("")


@pytest.mark.parametrize("validate", [validate_gallery_name, validate_image_name])
def test_names_may_be_80_characters_and_no_more(validate: object) -> None:
    assert callable(validate)
    longest = "a" * MAX_NAME_LENGTH
    assert MAX_NAME_LENGTH == 80
    assert validate(longest) == longest
    with pytest.raises(InvalidNameError) as caught:
        validate(longest + "a")
    assert "81" in str(caught.value)
    assert "80" in str(caught.value)


@given(name=gallery_names, data=st.data())
def test_a_hyphen_anywhere_makes_a_gallery_name_invalid(name: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(min_value=1, max_value=len(name)), label="position")
    candidate = (name[:position] + "-" + name[position:])[:MAX_NAME_LENGTH]
    with pytest.raises(InvalidNameError):
        validate_gallery_name(candidate)


@given(
    name=image_names, bad=st.sampled_from(["/", " ", "\\", "\x00", ":", "@", "\u00e9", "+"]), data=st.data()
)
def test_a_foreign_character_anywhere_makes_an_image_name_invalid(
    name: str, bad: str, data: st.DataObject
) -> None:
    position = data.draw(st.integers(min_value=0, max_value=len(name)), label="position")
    with pytest.raises(InvalidNameError):
        validate_image_name((name[:position] + bad + name[position:])[:MAX_NAME_LENGTH])


# --- blob names -------------------------------------------------------------------------------


def test_blob_name_parses_image_and_version() -> None:
    blob = BlobName.parse("ubuntu-22.04/versions/1.0.12")
    assert blob.image == "ubuntu-22.04"
    assert blob.version == ImageVersion(1, 0, 12)
    assert str(blob) == "ubuntu-22.04/versions/1.0.12"


@given(image=image_names, version=versions)
def test_blob_name_round_trips_through_text(image: str, version: ImageVersion) -> None:
    blob = BlobName(image, version)
    assert BlobName.parse(str(blob)) == blob
    assert str(BlobName.parse(str(blob))) == str(blob)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ubuntu",
        "ubuntu/1.0.0",
        "ubuntu/version/1.0.0",
        "ubuntu/Versions/1.0.0",
        "ubuntu/versions/1.0.0/",
        "/ubuntu/versions/1.0.0",
        "a/b/versions/1.0.0",
        "ubuntu/versions/1.0.0/manifest.json",
        "../versions/1.0.0",
        "-ubuntu/versions/1.0.0",
        "ubuntu./versions/1.0.0",
        "ubu ntu/versions/1.0.0",
        "ubuntu\\versions\\1.0.0",
    ],
)
def test_malformed_blob_names_are_refused_as_names(text: str) -> None:
    with pytest.raises(InvalidNameError):
        BlobName.parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "ubuntu/versions/1.0",
        "ubuntu/versions/01.0.0",
        "ubuntu/versions/latest",
        "ubuntu/versions/1.0.0.0",
        "ubuntu/versions/2147483648.0.0",
        "ubuntu/versions/",
        "ubuntu/versions/..",
    ],
)
def test_blob_names_with_a_bad_version_are_refused_as_versions(text: str) -> None:
    with pytest.raises(InvalidVersionError) as caught:
        BlobName.parse(text)
    assert isinstance(caught.value, InvalidInputError)


def test_the_blob_name_error_shows_an_example() -> None:
    with pytest.raises(InvalidNameError) as caught:
        BlobName.parse("ubuntu/1.0.0")
    assert "ubuntu/1.0.0" in str(caught.value)
    assert "/versions/" in str(caught.value)


def test_each_kind_of_name_names_only_the_endings_it_could_have() -> None:
    with pytest.raises(InvalidNameError) as gallery:
        validate_gallery_name("prod.")
    assert str(gallery.value).endswith("not ending with '.'")
    with pytest.raises(InvalidNameError) as image:
        validate_image_name("ubuntu-")
    assert str(image.value).endswith("not ending with '.' or '-'")
