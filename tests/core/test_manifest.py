"""The manifest format: build, encode, parse, and refuse everything that does not add up."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blobrep.core import manifest as manifest_module
from blobrep.core.chunking import MIB, ChunkingSpec
from blobrep.core.codec import MAX_LEVEL, MIN_LEVEL, max_stored_length
from blobrep.core.manifest import (
    FORMAT_1,
    FORMAT_2,
    MAX_BLOB_SIZE,
    MAX_MANIFEST_BYTES,
    ChunkRef,
    Manifest,
    build_manifest,
    encode_manifest,
    parse_manifest,
)
from blobrep.errors import ManifestError
from tests.core.strategies import digests

MANIFESTS = settings(max_examples=80, deadline=None)

# --- generated valid manifests ----------------------------------------------------------------


@st.composite
def explicit_fastcdc_specs(draw: st.DrawFn) -> ChunkingSpec:
    """fastcdc specs with any valid triple, not only the avg/4, 4*avg ones."""
    min_size = 2 * draw(st.integers(min_value=32, max_value=MIB // 2))
    avg_size = draw(st.integers(min_value=max(min_size, 256), max_value=4 * MIB))
    max_size = draw(st.integers(min_value=max(avg_size, 1024), max_value=16 * MIB))
    return ChunkingSpec("fastcdc", min_size, avg_size, max_size).validated()


specs = st.one_of(
    st.integers(min_value=256, max_value=4 * MIB).map(ChunkingSpec.fastcdc),
    explicit_fastcdc_specs(),
    st.builds(
        lambda avg, blocks: ChunkingSpec.fastcdc(avg, zero_run=4096 * blocks),
        st.integers(min_value=1, max_value=4096).map(lambda kib: kib * 1024),
        st.integers(min_value=1, max_value=256),
    ),
    st.integers(min_value=64, max_value=16 * MIB).map(ChunkingSpec.fixed),
)


@st.composite
def chunk_lists(draw: st.DrawFn, spec: ChunkingSpec) -> list[ChunkRef]:
    count = draw(st.integers(min_value=0, max_value=12))
    pool = draw(st.lists(digests, min_size=1, max_size=4))
    chunks: list[ChunkRef] = []
    for index in range(count):
        last = index == count - 1
        if draw(st.booleans()):
            # Zero runs may be split anywhere: no lower bound but 1 byte.
            chunks.append(ChunkRef(None, draw(st.integers(min_value=1, max_value=spec.max_size)), 0))
            continue
        if last:
            length = draw(st.integers(min_value=1, max_value=spec.max_size))
        elif spec.method == "fixed":
            length = spec.max_size
        else:
            length = draw(st.integers(min_value=spec.min_size, max_value=spec.max_size))
        digest = draw(st.one_of(digests, st.sampled_from(pool)))
        stored = draw(st.integers(min_value=1, max_value=max_stored_length(length)))
        chunks.append(ChunkRef(digest, length, stored))
    return chunks


@st.composite
def manifests(draw: st.DrawFn) -> Manifest:
    spec = draw(specs)
    chunks = draw(chunk_lists(spec))
    return build_manifest(
        size=sum(chunk.length for chunk in chunks),
        digest=draw(digests),
        chunking=spec,
        level=draw(st.integers(min_value=MIN_LEVEL, max_value=MAX_LEVEL)),
        chunks=chunks,
    )


@MANIFESTS
@given(manifest=manifests())
def test_encoded_manifest_parses_back_equal(manifest: Manifest) -> None:
    document = encode_manifest(manifest)
    parsed = parse_manifest(document)
    assert parsed == manifest
    # The encoding is canonical: encoding the parsed manifest gives the same bytes.
    assert encode_manifest(parsed) == document


@MANIFESTS
@given(spec=specs, data=st.data())
def test_build_manifest_keeps_every_part(spec: ChunkingSpec, data: st.DataObject) -> None:
    chunks = data.draw(chunk_lists(spec), label="chunks")
    digest = data.draw(digests, label="digest")
    level = data.draw(st.integers(min_value=MIN_LEVEL, max_value=MAX_LEVEL), label="level")
    size = sum(chunk.length for chunk in chunks)
    manifest = build_manifest(size=size, digest=digest, chunking=spec, level=level, chunks=chunks)
    assert (manifest.size, manifest.digest, manifest.chunking, manifest.level) == (size, digest, spec, level)
    assert list(manifest.chunks) == chunks


@MANIFESTS
@given(manifest=manifests())
def test_document_is_compact_json_with_the_format_and_one_newline(manifest: Manifest) -> None:
    document = encode_manifest(manifest)
    assert document.endswith(b"\n")
    assert document.count(b"\n") == 1
    raw = json.loads(document)
    with_zero_runs = manifest.chunking.zero_run is not None
    assert raw["format"] == (FORMAT_2 if with_zero_runs else FORMAT_1)
    assert (FORMAT_1, FORMAT_2) == ("blobrep.manifest/1", "blobrep.manifest/2")
    assert raw["size"] == manifest.size
    assert raw["digest"] == manifest.digest
    assert raw["chunking"] == manifest.chunking.to_json()
    assert raw["compression"] == {"codec": "zstd", "level": manifest.level}
    assert len(raw["chunks"]) == len(manifest.chunks)
    for entry, chunk in zip(raw["chunks"], manifest.chunks, strict=True):
        if chunk.is_zero:
            assert entry == {"zero": True, "length": chunk.length}
        else:
            assert entry == {
                "digest": chunk.digest,
                "length": chunk.length,
                "stored_length": chunk.stored_length,
            }


@MANIFESTS
@given(manifest=manifests())
def test_offsets_are_the_running_sum_of_lengths(manifest: Manifest) -> None:
    expected = 0
    for offset, chunk in manifest.with_offsets():
        assert offset == expected
        expected += chunk.length
    assert expected == manifest.size


@MANIFESTS
@given(manifest=manifests())
def test_stored_and_zero_byte_counts(manifest: Manifest) -> None:
    distinct: dict[str, ChunkRef] = {}
    for chunk in manifest.chunks:
        if chunk.digest is not None:
            distinct.setdefault(chunk.digest, chunk)
    assert manifest.stored_digests() == distinct
    assert list(manifest.stored_digests()) == list(distinct)
    assert manifest.stored_bytes == sum(chunk.stored_length for chunk in distinct.values())
    assert manifest.zero_bytes == sum(chunk.length for chunk in manifest.chunks if chunk.is_zero)
    assert manifest.zero_bytes <= manifest.size


def test_repeated_chunks_are_counted_once() -> None:
    spec = ChunkingSpec.fastcdc(4096)
    same = ChunkRef("0" * 32, 2000, 700)
    other = ChunkRef("1" * 32, 3000, 900)
    zero = ChunkRef(None, 5000, 0)
    manifest = build_manifest(
        size=12000, digest="f" * 32, chunking=spec, level=1, chunks=[same, zero, other, same]
    )
    assert list(manifest.stored_digests()) == ["0" * 32, "1" * 32]
    assert manifest.stored_bytes == 1600
    assert manifest.zero_bytes == 5000
    assert [offset for offset, _ in manifest.with_offsets()] == [0, 2000, 7000, 10000]


def test_an_empty_blob_has_an_empty_chunk_list() -> None:
    manifest = build_manifest(size=0, digest="a" * 32, chunking=ChunkingSpec.fixed(4096), level=3, chunks=[])
    assert parse_manifest(encode_manifest(manifest)) == manifest
    assert manifest.stored_bytes == manifest.zero_bytes == 0


def test_build_manifest_refuses_parts_that_do_not_add_up() -> None:
    chunks = [ChunkRef("0" * 32, 2000, 700)]
    with pytest.raises(ManifestError, match="size"):
        build_manifest(
            size=2001, digest="f" * 32, chunking=ChunkingSpec.fastcdc(4096), level=1, chunks=chunks
        )
    with pytest.raises(ManifestError, match="digest"):
        build_manifest(
            size=2000, digest="F" * 32, chunking=ChunkingSpec.fastcdc(4096), level=1, chunks=chunks
        )


# --- a hand-written valid document and its mutations -------------------------------------------

# fastcdc(4096): min 1024, max 16384.
DIGEST_A = "0123456789abcdef0123456789abcdef"
DIGEST_B = "fedcba9876543210fedcba9876543210"
BLOB_DIGEST = "00112233445566778899aabbccddeeff"


def valid() -> dict[str, Any]:
    return {
        "format": FORMAT_1,
        "size": 29384,
        "digest": BLOB_DIGEST,
        "chunking": {"method": "fastcdc", "min_size": 1024, "avg_size": 4096, "max_size": 16384},
        "compression": {"codec": "zstd", "level": 3},
        "chunks": [
            {"digest": DIGEST_A, "length": 8000, "stored_length": 3000},
            {"zero": True, "length": 16384},
            {"digest": DIGEST_B, "length": 5000, "stored_length": 5100},
        ],
    }


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def rejected(document: dict[str, Any] | bytes, *names: str) -> ManifestError:
    """Parse must refuse ``document`` with a message that names each of ``names``."""
    raw = document if isinstance(document, bytes) else encode(document)
    with pytest.raises(ManifestError) as caught:
        parse_manifest(raw)
    message = str(caught.value)
    assert message.startswith("invalid manifest")
    for name in names:
        assert name in message
    return caught.value


def test_the_hand_written_document_is_valid() -> None:
    manifest = parse_manifest(encode(valid()))
    assert manifest.size == 29384
    assert manifest.chunking == ChunkingSpec.fastcdc(4096)
    assert manifest.level == 3
    assert manifest.chunks == (
        ChunkRef(DIGEST_A, 8000, 3000),
        ChunkRef(None, 16384, 0),
        ChunkRef(DIGEST_B, 5000, 5100),
    )


def test_field_order_and_whitespace_do_not_matter() -> None:
    document = valid()
    reordered = dict(reversed(list(document.items())))
    text = json.dumps(reordered, indent=4, sort_keys=True)
    assert parse_manifest(text.encode()) == parse_manifest(encode(document))


def test_every_truncation_of_a_document_is_refused() -> None:
    document = encode_manifest(parse_manifest(encode(valid())))
    refused = 0
    for cut in range(len(document)):
        prefix = document[:cut]
        try:
            json.loads(prefix)
        except ValueError:
            rejected(prefix, "JSON")
            refused += 1
        else:
            # Only the whole document minus its newline is itself JSON, and it is complete.
            assert prefix == document.rstrip(b"\n")
    assert refused == len(document) - 1


@MANIFESTS
@given(manifest=manifests(), data=st.data())
def test_truncated_generated_documents_are_refused(manifest: Manifest, data: st.DataObject) -> None:
    document = encode_manifest(manifest)
    cut = data.draw(st.integers(min_value=0, max_value=len(document) - 2), label="cut")
    rejected(document[:cut], "JSON")


@pytest.mark.parametrize(
    "document",
    [b"", b"   ", b"hello", b"{", b"{'format': 'blobrep.manifest/1'}", b"<manifest/>", b"\xef\xbb\xbf{}"],
)
def test_text_that_is_not_json_is_refused(document: bytes) -> None:
    rejected(document, "JSON")


@pytest.mark.parametrize(
    "document",
    [
        b'{"format": "blobrep.manifest/1\xff"}',
        b"\xff\xfe\x00\x00",
        json.dumps(valid()).encode("utf-16"),
        json.dumps({**valid(), "digest": "caf\u00e9"}, ensure_ascii=False).encode("latin-1"),
    ],
    ids=["invalid-byte", "utf-32-bom", "utf-16", "latin-1"],
)
def test_bytes_that_are_not_utf8_are_refused(document: bytes) -> None:
    rejected(document, "UTF-8")


@pytest.mark.parametrize("top", [[], None, 1, "blobrep.manifest/1", True])
def test_a_document_that_is_not_an_object_is_refused(top: Any) -> None:
    rejected(json.dumps(top).encode(), "document", "object")


@pytest.mark.parametrize(
    "value",
    ["blobrep.manifest/4", "blobrep.manifest/0", "BLOBREP.MANIFEST/1", "", None, 1, ["blobrep.manifest/1"]],
)
def test_a_wrong_format_is_refused(value: Any) -> None:
    rejected({**valid(), "format": value}, "format")


# Where each required field lives, as a path into the document and as the message names it.
REQUIRED = [
    ((), "format", "document"),
    ((), "size", "document"),
    ((), "digest", "document"),
    ((), "chunking", "document"),
    ((), "compression", "document"),
    ((), "chunks", "document"),
    (("chunking",), "method", "chunking"),
    (("chunking",), "min_size", "chunking"),
    (("chunking",), "avg_size", "chunking"),
    (("chunking",), "max_size", "chunking"),
    (("compression",), "codec", "compression"),
    (("compression",), "level", "compression"),
    (("chunks", 0), "digest", "chunks[0]"),
    (("chunks", 0), "length", "chunks[0]"),
    (("chunks", 0), "stored_length", "chunks[0]"),
    (("chunks", 1), "length", "chunks[1]"),
]


def at(document: dict[str, Any], path: tuple[str | int, ...]) -> Any:
    node: Any = document
    for step in path:
        node = node[step]
    return node


@pytest.mark.parametrize(("path", "name", "where"), REQUIRED)
def test_a_missing_field_is_refused_by_name(path: tuple[str | int, ...], name: str, where: str) -> None:
    document = valid()
    del at(document, path)[name]
    rejected(document, where, "lacks", name)


@pytest.mark.parametrize(
    ("path", "where"),
    [
        ((), "document"),
        (("chunking",), "chunking"),
        (("compression",), "compression"),
        (("chunks", 0), "chunks[0]"),
        (("chunks", 1), "chunks[1]"),
    ],
)
def test_an_unknown_field_is_refused_by_name(path: tuple[str | int, ...], where: str) -> None:
    document = valid()
    at(document, path)["offset"] = 0
    rejected(document, where, "unknown", "offset")


def test_a_zero_entry_with_a_digest_or_stored_length_is_refused() -> None:
    document = valid()
    document["chunks"][1]["digest"] = DIGEST_A
    rejected(document, "chunks[1]", "digest")
    document = valid()
    document["chunks"][1]["stored_length"] = 10
    rejected(document, "chunks[1]", "stored_length")


@pytest.mark.parametrize(
    ("original", "duplicated", "name"),
    [
        ('"size": 29384', '"size": 1, "size": 29384', "size"),
        ('"size": 29384', '"size": 29384, "size": 29384', "size"),
        ('"format": "blobrep.manifest/1"', '"format": "x", "format": "blobrep.manifest/1"', "format"),
        ('"length": 8000', '"length": 8000, "length": 8000', "length"),
        ('"min_size": 1024', '"min_size": 1024, "min_size": 1024', "min_size"),
        ('"level": 3', '"level": 19, "level": 3', "level"),
    ],
)
def test_duplicate_keys_are_refused(original: str, duplicated: str, name: str) -> None:
    text = json.dumps(valid())
    assert original in text
    rejected(text.replace(original, duplicated, 1).encode(), name, "twice")


INTEGER_FIELDS = [
    (("size",), "size"),
    (("chunking", "min_size"), "chunking.min_size"),
    (("chunking", "avg_size"), "chunking.avg_size"),
    (("chunking", "max_size"), "chunking.max_size"),
    (("compression", "level"), "compression.level"),
    (("chunks", 0, "length"), "chunks[0].length"),
    (("chunks", 0, "stored_length"), "chunks[0].stored_length"),
    (("chunks", 1, "length"), "chunks[1].length"),
    (("chunks", 2, "length"), "chunks[2].length"),
]


def put(document: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    at(changed, path[:-1])[path[-1]] = value
    return changed


@pytest.mark.parametrize("value", [True, False, 1.0, 8000.0, "8000", None, [8000], {"n": 1}])
@pytest.mark.parametrize(("path", "name"), INTEGER_FIELDS)
def test_non_integers_where_integers_belong_are_refused(
    path: tuple[str | int, ...], name: str, value: Any
) -> None:
    rejected(put(valid(), path, value), name)


@pytest.mark.parametrize("value", [-1, -(2**63), 2**64, MAX_BLOB_SIZE + 1, 10**400])
@pytest.mark.parametrize(("path", "name"), INTEGER_FIELDS)
def test_out_of_range_integers_are_refused(path: tuple[str | int, ...], name: str, value: int) -> None:
    rejected(put(valid(), path, value), name)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_are_refused(literal: str) -> None:
    text = json.dumps(valid()).replace('"size": 29384', f'"size": {literal}')
    rejected(text.encode(), "size")


@pytest.mark.parametrize("digits", [4301, 5000, 100_000])
def test_integers_with_thousands_of_digits_are_refused(digits: int) -> None:
    # Python refuses to convert such numbers at all; that must still be a manifest error.
    text = json.dumps(valid()).replace('"size": 29384', '"size": 1' + "0" * (digits - 1))
    rejected(text.encode(), "number", "digits")


def test_the_maximum_blob_size_is_in_range() -> None:
    # MAX_BLOB_SIZE itself is in range: it is the lengths that then must add up.
    rejected(put(valid(), ("size",), MAX_BLOB_SIZE), "add up", str(MAX_BLOB_SIZE))


@pytest.mark.parametrize("delta", [-1, 1, 16384])
def test_lengths_that_do_not_add_up_to_the_size_are_refused(delta: int) -> None:
    error = rejected(put(valid(), ("size",), 29384 + delta), "chunks", "size")
    assert "29384" in str(error)
    assert str(29384 + delta) in str(error)


def test_a_size_with_no_chunks_is_refused() -> None:
    document = valid()
    document["chunks"] = []
    rejected(document, "chunks", "size")


def test_a_chunk_longer_than_max_size_is_refused() -> None:
    document = valid()
    document["chunks"][0]["length"] = 16385
    document["size"] += 16385 - 8000
    rejected(document, "chunks[0].length", "16385")
    document = valid()
    document["chunks"][1]["length"] = 16385
    document["size"] += 1
    rejected(document, "chunks[1].length")


def test_a_non_last_stored_chunk_shorter_than_min_size_is_refused() -> None:
    document = valid()
    document["chunks"][0].update(length=1023, stored_length=100)
    document["size"] -= 8000 - 1023
    rejected(document, "chunks[0].length", "1023", "minimum")


def test_a_non_last_chunk_of_exactly_min_size_is_accepted() -> None:
    document = valid()
    document["chunks"][0].update(length=1024, stored_length=100)
    document["size"] -= 8000 - 1024
    assert parse_manifest(encode(document)).chunks[0].length == 1024


def test_a_short_last_chunk_and_short_zero_runs_are_accepted() -> None:
    document = valid()
    document["chunks"][1]["length"] = 1
    document["chunks"][2].update(length=1, stored_length=10)
    document["size"] = 8000 + 1 + 1
    manifest = parse_manifest(encode(document))
    assert [chunk.length for chunk in manifest.chunks] == [8000, 1, 1]


def fixed_document(lengths: list[int]) -> dict[str, Any]:
    return {
        **valid(),
        "size": sum(lengths),
        "chunking": {"method": "fixed", "min_size": 4096, "avg_size": 4096, "max_size": 4096},
        "chunks": [{"digest": DIGEST_A, "length": length, "stored_length": 100} for length in lengths],
    }


def test_fixed_chunks_of_the_size_and_a_shorter_last_are_accepted() -> None:
    manifest = parse_manifest(encode(fixed_document([4096, 4096, 17])))
    assert manifest.chunking == ChunkingSpec.fixed(4096)


@pytest.mark.parametrize(
    ("lengths", "name"),
    [
        ([4095, 4096, 17], "chunks[0].length"),
        ([4096, 2000, 4096], "chunks[1].length"),
        ([4096, 4097], "chunks[1].length"),
        ([4097, 4095], "chunks[0].length"),
    ],
)
def test_fixed_chunks_of_another_size_are_refused(lengths: list[int], name: str) -> None:
    rejected(fixed_document(lengths), name)


@pytest.mark.parametrize(("index", "length"), [(0, 8000), (2, 5000)])
def test_a_stored_length_absurdly_larger_than_the_length_is_refused(index: int, length: int) -> None:
    for stored in (max_stored_length(length) + 1, 10 * length, 2**40):
        rejected(put(valid(), ("chunks", index, "stored_length"), stored), f"chunks[{index}].stored_length")


def test_the_largest_plausible_stored_length_is_accepted() -> None:
    document = put(valid(), ("chunks", 0, "stored_length"), max_stored_length(8000))
    assert parse_manifest(encode(document)).chunks[0].stored_length == max_stored_length(8000)


BAD_DIGESTS = [
    "../../../etc/passwd",
    "aa/../../bb",
    "../../../../../../../../etc/pass",  # 32 characters
    "aa/bb/../../../../../../../../cc",  # 32 characters
    DIGEST_A.upper(),
    DIGEST_A[:31],
    DIGEST_A + "0",
    "g" * 32,
    "",
    " " + DIGEST_A[1:],
    DIGEST_A + "\n",
    DIGEST_A[:31] + "\x00",
    "\uff10" * 32,  # full-width digits
    "\u0660" * 32,  # Arabic-Indic digits
    123,
    None,
    [DIGEST_A],
]


@pytest.mark.parametrize("digest", BAD_DIGESTS)
@pytest.mark.parametrize(
    ("path", "name"),
    [
        (("digest",), "digest"),
        (("chunks", 0, "digest"), "chunks[0].digest"),
        (("chunks", 2, "digest"), "chunks[2].digest"),
    ],
)
def test_a_digest_that_is_not_32_lower_case_hex_is_refused(
    path: tuple[str | int, ...], name: str, digest: Any
) -> None:
    error = rejected(put(valid(), path, digest), name, "hex")
    if name == "digest":
        assert str(error).startswith("invalid manifest: digest")


@pytest.mark.parametrize("value", [False, 1, "true", None, 0])
def test_a_zero_entry_must_say_zero_true(value: Any) -> None:
    rejected(put(valid(), ("chunks", 1, "zero"), value), "chunks[1].zero")


@pytest.mark.parametrize("value", [{}, "chunks", None, 3, {"0": {"zero": True, "length": 1}}])
def test_chunks_that_are_not_a_list_are_refused(value: Any) -> None:
    rejected(put(valid(), ("chunks",), value), "chunks", "list")


@pytest.mark.parametrize("entry", [1, DIGEST_A, None, [DIGEST_A, 8000, 3000], True])
def test_a_chunk_entry_that_is_not_an_object_is_refused(entry: Any) -> None:
    rejected(put(valid(), ("chunks", 0), entry), "chunks[0]", "object")


@pytest.mark.parametrize("value", [[], "fastcdc", None, 4096])
@pytest.mark.parametrize("name", ["chunking", "compression"])
def test_parameter_blocks_that_are_not_objects_are_refused(name: str, value: Any) -> None:
    rejected(put(valid(), (name,), value), name, "object")


@pytest.mark.parametrize("method", ["rabin", "FASTCDC", "", None, 1])
def test_an_unknown_chunking_method_is_refused(method: Any) -> None:
    rejected(put(valid(), ("chunking", "method"), method), "chunking.method")


@pytest.mark.parametrize(
    "chunking",
    [
        {"method": "fastcdc", "min_size": 63, "avg_size": 4096, "max_size": 16384},
        {"method": "fastcdc", "min_size": 1023, "avg_size": 4096, "max_size": 16384},
        {"method": "fastcdc", "min_size": 8192, "avg_size": 4096, "max_size": 16384},
        {"method": "fastcdc", "min_size": 1024, "avg_size": 4096, "max_size": 2048},
        {"method": "fastcdc", "min_size": 1024, "avg_size": 4096, "max_size": 32 * MIB},
        {"method": "fixed", "min_size": 4096, "avg_size": 4096, "max_size": 8192},
        {"method": "fixed", "min_size": 32, "avg_size": 32, "max_size": 32},
    ],
)
def test_unusable_chunking_sizes_are_refused(chunking: dict[str, Any]) -> None:
    rejected(put(valid(), ("chunking",), chunking), "chunking")


@pytest.mark.parametrize("codec", ["gzip", "ZSTD", "", None, 1])
def test_a_codec_other_than_zstd_is_refused(codec: Any) -> None:
    rejected(put(valid(), ("compression", "codec"), codec), "compression.codec")


@pytest.mark.parametrize("level", [0, MAX_LEVEL + 1, 22, -5])
def test_a_compression_level_out_of_range_is_refused(level: int) -> None:
    rejected(put(valid(), ("compression", "level"), level), "compression.level")


# --- hostile sizes and shapes -------------------------------------------------------------------


def test_a_document_over_the_size_limit_is_refused_before_parsing() -> None:
    # A valid document padded with whitespace: only its size is wrong.
    document = encode(valid()).ljust(MAX_MANIFEST_BYTES + 1, b" ")
    error = rejected(document, "limit", str(MAX_MANIFEST_BYTES))
    assert str(len(document)) in str(error)


def test_the_size_limit_is_inclusive(monkeypatch: pytest.MonkeyPatch) -> None:
    document = encode(valid())
    monkeypatch.setattr(manifest_module, "MAX_MANIFEST_BYTES", len(document))
    assert parse_manifest(document).size == 29384
    monkeypatch.setattr(manifest_module, "MAX_MANIFEST_BYTES", len(document) - 1)
    rejected(document, "limit")


@pytest.mark.parametrize("depth", [100_000, 1_000_000])
@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_deeply_nested_json_is_refused(opener: bytes, depth: int) -> None:
    rejected(opener * depth, "nested")


@pytest.mark.parametrize("depth", [1, 10, 200, 900, 990, 1000, 5000, 100_000])
@pytest.mark.parametrize("name", ["size", "digest", "format", "chunks", "chunking"])
def test_deep_nesting_inside_a_field_is_refused(name: str, depth: int) -> None:
    text = json.dumps({**valid(), name: "HERE"}).replace('"HERE"', "[" * depth + "]" * depth)
    message = str(rejected(text.encode()))
    assert name in message or "nested" in message


def test_a_very_long_chunk_list_is_parsed() -> None:
    count = 100_000
    document = {
        **valid(),
        "size": count * 4096,
        "chunking": {"method": "fixed", "min_size": 4096, "avg_size": 4096, "max_size": 4096},
        "chunks": [{"zero": True, "length": 4096}] * count,
    }
    manifest = parse_manifest(encode(document))
    assert len(manifest.chunks) == count
    assert manifest.zero_bytes == manifest.size


# --- format 2: chunking ended by zero runs ------------------------------------------------------


def valid_2() -> dict[str, Any]:
    """A format 2 document: a data chunk shorter than the minimum where a zero run follows."""
    document = valid()
    document["format"] = FORMAT_2
    document["chunking"] = {**document["chunking"], "zero_run": 4096}
    document["chunks"] = [
        {"digest": DIGEST_A, "length": 300, "stored_length": 200},
        {"zero": True, "length": 8192},
        {"digest": DIGEST_B, "length": 5000, "stored_length": 5100},
    ]
    document["size"] = 300 + 8192 + 5000
    return document


def test_a_format_2_document_reads_with_its_zero_run_and_short_segment_ends() -> None:
    manifest = parse_manifest(encode(valid_2()))
    assert manifest.chunking == ChunkingSpec.fastcdc(4096, zero_run=4096)
    assert [chunk.length for chunk in manifest.chunks] == [300, 8192, 5000]
    assert manifest.format == FORMAT_2
    assert json.loads(encode_manifest(manifest))["format"] == FORMAT_2


def test_format_2_still_refuses_a_short_data_chunk_followed_by_data() -> None:
    document = valid_2()
    document["chunks"].insert(1, {"digest": DIGEST_B, "length": 700, "stored_length": 300})
    document["size"] += 700
    rejected(document, "chunks[0].length", "300", "minimum")


def test_format_1_refuses_a_short_data_chunk_even_before_zeros() -> None:
    document = valid_2()
    document["format"] = FORMAT_1
    del document["chunking"]["zero_run"]
    rejected(document, "chunks[0].length", "300", "minimum")


def test_each_format_refuses_the_others_chunking_fields() -> None:
    document = valid_2()
    del document["chunking"]["zero_run"]
    rejected(document, "chunking", "zero_run")
    document = valid()
    document["chunking"]["zero_run"] = 4096
    rejected(document, "chunking", "zero_run")


@pytest.mark.parametrize("zero_run", [0, 4095, 6000, 2 * MIB, True, "4096", None])
def test_an_unusable_zero_run_is_refused_by_name(zero_run: Any) -> None:
    document = valid_2()
    document["chunking"]["zero_run"] = zero_run
    rejected(document, "zero")


def test_manifests_without_zero_runs_keep_format_1_byte_for_byte() -> None:
    # Blobs published before format 2 re-encode exactly as written, so the catalog's pins of
    # them (and replication, which re-encodes) still match.
    document = json.dumps(valid(), separators=(",", ":")).encode() + b"\n"
    manifest = parse_manifest(document)
    assert manifest.format == FORMAT_1
    assert encode_manifest(manifest) == document
