"""Object-store URLs: what parses, what it means, and what a bad URL is told."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blobrep.errors import InvalidInputError, InvalidParameterError
from blobrep.storage.object_url import ObjectUrl

# --- parsing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "bucket", "prefix"),
    [
        ("s3://blobrep-test", "s3", "blobrep-test", ""),
        ("s3://blobrep-test/", "s3", "blobrep-test", ""),
        ("s3://my.bucket-1/regions/westus/replica-1", "s3", "my.bucket-1", "regions/westus/replica-1"),
        ("s3://abc/x/", "s3", "abc", "x"),
        ("S3://abc/x", "s3", "abc", "x"),
        ("az://blobrep-test", "azure", "blobrep-test", ""),
        ("az://blobrep-test/a/b", "azure", "blobrep-test", "a/b"),
        ("azure://blobrep-test/a/b/", "azure", "blobrep-test", "a/b"),
        ("az://a1-b2-c3/Replica_1/.v1", "azure", "a1-b2-c3", "Replica_1/.v1"),
    ],
)
def test_parse_gives_the_kind_bucket_and_prefix(text: str, kind: str, bucket: str, prefix: str) -> None:
    url = ObjectUrl.parse(text)

    assert (url.kind, url.bucket, url.prefix) == (kind, bucket, prefix)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("s3://bucket", "s3://bucket"),
        ("s3://bucket/", "s3://bucket"),
        ("s3://bucket/p/q/", "s3://bucket/p/q"),
        ("azure://container/p", "az://container/p"),
        ("AZ://container", "az://container"),
    ],
)
def test_str_is_the_canonical_form(text: str, canonical: str) -> None:
    assert str(ObjectUrl.parse(text)) == canonical


def test_child_names_the_store_below() -> None:
    region = ObjectUrl.parse("s3://blobrep/regions/westus")

    assert str(region.child("replica-1")) == "s3://blobrep/regions/westus/replica-1"
    assert str(ObjectUrl.parse("az://ccc").child("replica-2")) == "az://ccc/replica-2"
    assert str(ObjectUrl.parse("az://ccc").child("a/b")) == "az://ccc/a/b"


@pytest.mark.parametrize("segment", ["", "..", "a/../b", "a b", "/abs", "a/", "x~"])
def test_child_refuses_a_segment_that_is_no_key(segment: str) -> None:
    with pytest.raises(InvalidParameterError, match=re.escape("s3://bucket/p")):
        ObjectUrl.parse("s3://bucket/p").child(segment)


def test_constructing_directly_validates_too() -> None:
    assert ObjectUrl("s3", "bucket", "p") == ObjectUrl.parse("s3://bucket/p")
    with pytest.raises(InvalidParameterError, match="S3 bucket name 'B' is not valid"):
        ObjectUrl("s3", "B", "")
    with pytest.raises(InvalidParameterError, match="kind 'gcs'"):
        ObjectUrl("gcs", "bucket", "")  # type: ignore[arg-type]


# --- what a bad URL is told -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "ftp://x",
            "'ftp://x' is not an object-store URL: use s3://BUCKET/PREFIX or az://CONTAINER/PREFIX",
        ),
        ("blobrep-test", "is not an object-store URL: use s3://BUCKET/PREFIX"),
        ("/var/lib/blobrep", "is not an object-store URL"),
        ("gs://bucket", "is not an object-store URL"),
        ("s3://", "'s3://' names no bucket: use s3://BUCKET/PREFIX"),
        ("az:///x", "names no container"),
        (
            "s3://Ab",
            "S3 bucket name 'Ab' is not valid: 3 to 63 lowercase letters, digits, dots or hyphens",
        ),
        ("s3://ab", "S3 bucket name 'ab' is not valid: 3 to 63"),
        ("s3://" + "a" * 64, "is not valid: 3 to 63"),
        ("s3://-bucket", "starting and ending with a letter or digit"),
        ("s3://bucket-", "starting and ending with a letter or digit"),
        ("s3://bucket_1", "S3 bucket name 'bucket_1' is not valid"),
        ("s3://my..bucket", "no two dots in a row"),
        ("s3://192.168.10.1", "may not look like an IP address"),
        ("s3://xn--bucket", "reserved by AWS"),
        ("s3://data-s3alias", "reserved by AWS"),
        ("az://Blobs", "Azure container name 'Blobs' is not valid: 3 to 63 lowercase letters, digits"),
        ("az://a--b", "single hyphens"),
        ("az://-abc", "starting and ending with a letter or digit"),
        ("az://abc-", "Azure container name 'abc-' is not valid"),
        ("az://my.container", "Azure container name 'my.container' is not valid"),
        ("s3://bucket/../x", "prefix '../x'"),
        ("s3://bucket/a//b", "prefix 'a//b'"),
        ("s3://bucket//", "has an empty prefix segment"),
        ("s3://bucket/a b", "segment 'a b': use letters, digits"),
        ("s3://bucket/p?x=1", "segment 'p?x=1'"),
        ("s3://bucket/a~tmp", "prefix 'a~tmp'"),
    ],
)
def test_a_bad_url_is_refused_saying_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        ObjectUrl.parse(text)

    assert message in str(caught.value)


def test_a_non_string_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="is not an object-store URL"):
        ObjectUrl.parse(b"s3://bucket")  # type: ignore[arg-type]


# --- properties -------------------------------------------------------------------------

_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")

# DNS-style labels joined by dots: every S3 rule but the length, IP and reserved ones by construction.
s3_buckets = (
    st.lists(st.from_regex(r"[a-z0-9]([a-z0-9-]{0,12}[a-z0-9])?", fullmatch=True), min_size=1, max_size=5)
    .map(".".join)
    .filter(lambda name: 3 <= len(name) <= 63)
    .filter(lambda name: re.fullmatch(r"[\d.]+", name) is None)
    .filter(lambda name: not name.startswith(_RESERVED_PREFIXES) and not name.endswith(_RESERVED_SUFFIXES))
)
azure_containers = (
    st.lists(st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True), min_size=1, max_size=6)
    .map("-".join)
    .filter(lambda name: 3 <= len(name) <= 63)
)

_SEGMENT = st.from_regex(r"[A-Za-z0-9._-]{1,20}", fullmatch=True).filter(lambda s: s not in (".", ".."))
_PREFIXES = st.lists(_SEGMENT, max_size=5).map("/".join)


@st.composite
def urls(draw: st.DrawFn) -> ObjectUrl:
    if draw(st.booleans()):
        return ObjectUrl("s3", draw(s3_buckets), draw(_PREFIXES))
    return ObjectUrl("azure", draw(azure_containers), draw(_PREFIXES))


@given(urls())
def test_parsing_the_canonical_form_gives_the_same_url(url: ObjectUrl) -> None:
    assert ObjectUrl.parse(str(url)) == url
    assert ObjectUrl.parse(str(url) + "/") == url


@given(urls(), _SEGMENT)
def test_a_child_is_one_segment_deeper(url: ObjectUrl, segment: str) -> None:
    child = url.child(segment)

    assert str(child) == f"{url}/{segment}"
    assert ObjectUrl.parse(str(child)) == child


_JUNK = st.one_of(
    st.text(max_size=80),
    st.builds(
        lambda scheme, rest: f"{scheme}://{rest}",
        st.sampled_from(["s3", "az", "azure", "S3", "gs", ""]),
        st.text(alphabet=st.characters(codec="utf-8"), max_size=80),
    ),
    st.builds(
        lambda scheme, rest: f"{scheme}://{rest}",
        st.sampled_from(["s3", "az"]),
        st.text(alphabet="abc-./_~ 019AZ", max_size=80),
    ),
)


@given(_JUNK)
def test_junk_is_refused_with_an_input_error_or_parses_to_a_stable_url(text: str) -> None:
    try:
        url = ObjectUrl.parse(text)
    except InvalidInputError:
        return
    assert ObjectUrl.parse(str(url)) == url
