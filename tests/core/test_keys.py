"""Storage keys: the layout inside a replica and the rules that keep keys inside the store."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blobrep.core.keys import (
    MANIFEST_FILENAME,
    MAX_KEY_LENGTH,
    blob_of_manifest_key,
    chunk_key,
    chunks_prefix,
    is_digest,
    manifest_key,
    validate_key,
    validate_prefix,
)
from blobrep.core.names import BlobName
from blobrep.core.version import ImageVersion
from blobrep.errors import InvalidKeyError, InvalidNameError
from tests.core import strategies
from tests.core.strategies import digests

SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"

segments = st.text(alphabet=SAFE, min_size=1, max_size=40).filter(lambda s: s not in (".", ".."))
keys = st.lists(segments, min_size=1, max_size=8).map("/".join)

gallery_names = strategies.gallery_names(32)
image_names = strategies.image_names(32)
versions = strategies.versions


@given(key=keys)
def test_keys_of_safe_segments_are_accepted_unchanged(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    "key",
    [
        "galleries/g/chunks/01/23/0123456789abcdef0123456789abcdef",
        "galleries/g/images/ubuntu-22.04/versions/1.0.0/manifest.json",
        "a",
        "...",
        "a..b/.hidden/x.",
        "_/-/9",
    ],
)
def test_ordinary_keys_are_accepted(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        ".",
        "..",
        "../x",
        "x/..",
        "a/../b",
        "a/../../etc/passwd",
        "./a",
        "a/./b",
        "a//b",
        "a/",
        "/",
        "/a",
        "/etc/passwd",
        "//server/share",
        "a\x00b",
        "a/b\x00",
        "a\\b",
        "..\\..\\windows",
        "C:/x",
        "c:x",
        "a b",
        "a\nb",
        "caf\u00e9",
        "\uff0e\uff0e/x",  # full-width dots
        "a/b?c",
        "a*",
        "~/x",
        "x" * (MAX_KEY_LENGTH + 1),
        "x" * 256,
    ],
)
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidKeyError):
        validate_key(key)


@given(key=keys, data=st.data())
def test_a_parent_or_self_segment_anywhere_is_refused(key: str, data: st.DataObject) -> None:
    parts = key.split("/")
    index = data.draw(st.integers(min_value=0, max_value=len(parts)), label="index")
    bad = data.draw(st.sampled_from(["..", ".", ""]), label="segment")
    with pytest.raises(InvalidKeyError) as caught:
        validate_key("/".join([*parts[:index], bad, *parts[index:]]))
    # An empty first segment is a leading '/', reported as an absolute key.
    assert "segment" in str(caught.value) or (index == 0 and "absolute" in str(caught.value))


@given(key=keys, bad=st.sampled_from(["\x00", "\\", ":", " ", "\n", "\u00e9", "%", "\u2215"]), data=st.data())
def test_a_character_outside_the_alphabet_anywhere_is_refused(
    key: str, bad: str, data: st.DataObject
) -> None:
    position = data.draw(st.integers(min_value=0, max_value=len(key)), label="position")
    with pytest.raises(InvalidKeyError) as caught:
        validate_key(key[:position] + bad + key[position:])
    assert "use letters, digits" in str(caught.value)


def test_the_key_length_limit_is_inclusive() -> None:
    longest = "/".join(["x" * 255] * 3 + ["x" * 254, "y"])
    assert len(longest) == MAX_KEY_LENGTH
    assert validate_key(longest) == longest
    with pytest.raises(InvalidKeyError) as caught:
        validate_key(longest + "z")
    assert str(MAX_KEY_LENGTH) in str(caught.value)


def test_absolute_keys_are_refused_as_absolute() -> None:
    with pytest.raises(InvalidKeyError, match="absolute"):
        validate_key("/galleries/g")


@pytest.mark.parametrize("prefix", ["", "galleries/", "galleries/g/chunks/", "galleries/g/chunks/ab", "a"])
def test_listing_prefixes_are_accepted(prefix: str) -> None:
    assert validate_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["/", "//", "../", "a//", "a/../", "/galleries/", "a\x00/", "galleries//"])
def test_unsafe_listing_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(InvalidKeyError):
        validate_prefix(prefix)


@given(digest=digests)
def test_is_digest_accepts_32_lower_case_hex(digest: str) -> None:
    assert is_digest(digest)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0" * 31,
        "0" * 33,
        "A" * 32,
        "g" * 32,
        "0" * 31 + "\n",
        "\uff10" * 32,
        "../" * 10 + "ab",
        " " + "0" * 31,
    ],
)
def test_is_digest_refuses_anything_else(text: str) -> None:
    assert not is_digest(text)


# --- layout ---------------------------------------------------------------------------------


@given(gallery=gallery_names, digest=digests)
def test_chunk_key_fans_out_by_the_first_two_digest_bytes(gallery: str, digest: str) -> None:
    key = chunk_key(gallery, digest)
    assert key == f"galleries/{gallery}/chunks/{digest[0:2]}/{digest[2:4]}/{digest}"
    assert validate_key(key) == key
    assert key.startswith(chunks_prefix(gallery))


def test_chunk_key_example() -> None:
    digest = "0123456789abcdef0123456789abcdef"
    assert chunk_key("mygallery", digest) == f"galleries/mygallery/chunks/01/23/{digest}"


@given(first=gallery_names, second=gallery_names, digest=digests)
def test_galleries_never_share_chunk_keys(first: str, second: str, digest: str) -> None:
    if first != second:
        assert chunk_key(first, digest) != chunk_key(second, digest)
        assert not chunk_key(first, digest).startswith(chunks_prefix(second))


@pytest.mark.parametrize(
    "digest",
    [
        "../../../etc/passwd",
        "aa/../../bb",
        "../../../../../../../../etc/pass",
        "0123456789ABCDEF0123456789ABCDEF",
        "0123456789abcdef",
        "",
    ],
)
def test_chunk_key_refuses_a_malformed_digest(digest: str) -> None:
    with pytest.raises(InvalidKeyError):
        chunk_key("gallery", digest)


@pytest.mark.parametrize("gallery", ["", "..", "a/b", "my-gallery", "../x", "g" * 81])
def test_chunk_key_and_manifest_key_refuse_an_invalid_gallery(gallery: str) -> None:
    with pytest.raises(InvalidNameError):
        chunk_key(gallery, "0" * 32)
    with pytest.raises(InvalidNameError):
        manifest_key(gallery, BlobName.parse("ubuntu/versions/1.0.0"))
    with pytest.raises(InvalidNameError):
        chunks_prefix(gallery)


@given(gallery=gallery_names, image=image_names, version=versions)
def test_manifest_key_layout(gallery: str, image: str, version: ImageVersion) -> None:
    blob = BlobName(image, version)
    key = manifest_key(gallery, blob)
    assert key == f"galleries/{gallery}/images/{image}/versions/{version}/{MANIFEST_FILENAME}"
    assert key.endswith("/manifest.json")
    assert validate_key(key) == key
    # Manifests and chunks of a gallery never collide.
    assert not key.startswith(chunks_prefix(gallery))


def test_manifest_key_example() -> None:
    blob = BlobName.parse("ubuntu-22.04/versions/1.0.12")
    assert (
        manifest_key("gallery_1", blob)
        == "galleries/gallery_1/images/ubuntu-22.04/versions/1.0.12/manifest.json"
    )


def test_chunks_prefix_is_a_valid_listing_prefix() -> None:
    assert chunks_prefix("g.1") == "galleries/g.1/chunks/"
    assert validate_prefix(chunks_prefix("g.1")) == "galleries/g.1/chunks/"


@given(strategies.gallery_names(), strategies.image_names(), strategies.versions)
def test_a_manifest_key_names_its_blob_back(gallery: str, image: str, version: ImageVersion) -> None:
    blob = BlobName(image, version)
    assert blob_of_manifest_key(gallery, manifest_key(gallery, blob)) == blob


@pytest.mark.parametrize(
    "key",
    [
        "galleries/gal/images/img/versions/1.0.0/other.json",
        "galleries/other/images/img/versions/1.0.0/manifest.json",
        "galleries/gal/images/img/versions/1.0/manifest.json",
        "galleries/gal/images/img/versions/01.0.0/manifest.json",
        "galleries/gal/chunks/ab/cd/abcd/manifest.json",
        "galleries/gal/images/img/versions/1.0.0",
    ],
)
def test_anything_but_a_manifest_key_of_the_gallery_names_no_blob(key: str) -> None:
    assert blob_of_manifest_key("gal", key) is None
