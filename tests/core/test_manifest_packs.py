"""Manifest format 3: chunks stored in packs, mixed with chunks stored as their own objects."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blobrep.core.chunking import ChunkingSpec
from blobrep.core.codec import max_stored_length
from blobrep.core.keys import chunk_key, pack_key
from blobrep.core.manifest import (
    FORMAT_1,
    FORMAT_2,
    FORMAT_3,
    ChunkRef,
    Manifest,
    build_manifest,
    encode_manifest,
    parse_manifest,
)
from blobrep.core.packs import MAX_PACK_SIZE, PackBuilder, PackRef
from blobrep.errors import ManifestError
from tests.core.strategies import digests

DIGEST_A = "0123456789abcdef0123456789abcdef"
DIGEST_B = "fedcba9876543210fedcba9876543210"
DIGEST_C = "a" * 32
PACK_1 = "1" * 32
PACK_2 = "2" * 32


def valid_3() -> dict[str, Any]:
    """Two chunks in one pack, one repeated, one stored on its own, and a zero run."""
    return {
        "format": FORMAT_3,
        "size": 8000 + 16384 + 5000 + 8000 + 2000,
        "digest": "00112233445566778899aabbccddeeff",
        "chunking": {"method": "fastcdc", "min_size": 1024, "avg_size": 4096, "max_size": 16384},
        "compression": {"codec": "zstd", "level": 2},
        "packs": [{"digest": PACK_1, "size": 9000}],
        "chunks": [
            {"digest": DIGEST_A, "length": 8000, "stored_length": 3000, "pack": 0, "offset": 0},
            {"zero": True, "length": 16384},
            {"digest": DIGEST_B, "length": 5000, "stored_length": 5100, "pack": 0, "offset": 3000},
            {"digest": DIGEST_A, "length": 8000, "stored_length": 3000, "pack": 0, "offset": 0},
            {"digest": DIGEST_C, "length": 2000, "stored_length": 700},
        ],
    }


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def unplace(chunk: dict[str, Any]) -> None:
    del chunk["pack"], chunk["offset"]


def rejected(document: dict[str, Any], *names: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(encode(document))
    message = str(caught.value)
    assert message.startswith("invalid manifest")
    for name in names:
        assert name in message, message


def test_a_format_3_document_reads_with_each_chunks_place() -> None:
    manifest = parse_manifest(encode(valid_3()))
    assert manifest.format == FORMAT_3
    assert manifest.packs == (PackRef(PACK_1, 9000),)
    a, _, b, again, c = manifest.chunks
    assert (a.pack, a.offset, b.pack, b.offset) == (PackRef(PACK_1, 9000), 0, PackRef(PACK_1, 9000), 3000)
    assert again == a
    assert (c.pack, c.offset) == (None, 0)
    assert a.location("g") == (pack_key("g", PACK_1), 0)
    assert b.location("g") == (pack_key("g", PACK_1), 3000)
    assert c.location("g") == (chunk_key("g", DIGEST_C), 0)
    assert manifest.objects("g") == {pack_key("g", PACK_1): 9000, chunk_key("g", DIGEST_C): 700}
    assert manifest.chunking.zero_run is None


def test_pack_keys_have_one_level_of_fan_out() -> None:
    assert pack_key("g", PACK_2) == f"galleries/g/packs/22/{PACK_2}"


def test_a_zero_chunk_has_no_location() -> None:
    with pytest.raises(ValueError, match="zero chunk"):
        ChunkRef(None, 10, 0).location("g")


def test_format_3_takes_a_zero_run_too() -> None:
    document = valid_3()
    document["chunking"]["zero_run"] = 4096
    assert parse_manifest(encode(document)).chunking == ChunkingSpec.fastcdc(4096, zero_run=4096)


def test_a_manifest_reencodes_byte_for_byte() -> None:
    document = json.dumps(valid_3(), separators=(",", ":")).encode() + b"\n"
    assert encode_manifest(parse_manifest(document)) == document


@pytest.mark.parametrize(
    ("change", "names"),
    [
        (lambda d: d["chunks"][2].update(offset=2999), ("chunks[2]", "overlaps")),
        (lambda d: d["chunks"][2].update(offset=3901), ("chunks[2]", "past the end", "9000")),
        (lambda d: d["chunks"][2].update(offset=9000), ("chunks[2].offset", "9000")),
        (lambda d: d["chunks"][2].update(pack=1), ("chunks[2].pack", "outside 0..0")),
        (lambda d: d["chunks"][2].update(pack=True), ("chunks[2].pack", "integer")),
        (lambda d: d["chunks"][2].pop("offset"), ("chunks[2]", "both 'pack' and 'offset'")),
        (lambda d: d["chunks"][3].update(offset=4000), ("chunks[3]", "somewhere else")),
        (lambda d: unplace(d["chunks"][3]), ("chunks[3]", "somewhere else")),
        (lambda d: d["packs"].append({"digest": PACK_2, "size": 10}), ("packs[1]", "named by no chunk")),
        (lambda d: d["packs"].append({"digest": PACK_1, "size": 10}), ("packs[1].digest", "second time")),
        (lambda d: d["packs"][0].update(size=MAX_PACK_SIZE + 1), ("packs[0].size", str(MAX_PACK_SIZE))),
        (lambda d: d["packs"][0].update(size=0), ("packs[0].size",)),
        (lambda d: d["packs"][0].update(digest="../../x"), ("packs[0].digest", "hex")),
        (lambda d: d["packs"][0].update(extra=1), ("packs[0]", "extra")),
        (lambda d: d.update(packs={}), ("packs", "list")),
        (lambda d: d.pop("packs"), ("document", "packs")),
    ],
)
def test_format_3_refuses_what_does_not_add_up(change: Any, names: tuple[str, ...]) -> None:
    document = valid_3()
    change(document)
    rejected(document, *names)


def test_an_empty_pack_list_is_refused() -> None:
    document = valid_3()
    document["packs"] = []
    document["chunks"] = [document["chunks"][1], document["chunks"][4]]
    document["size"] = 16384 + 2000
    rejected(document, "packs", "is empty")


@pytest.mark.parametrize("form", [FORMAT_1, FORMAT_2])
def test_older_formats_refuse_packs(form: str) -> None:
    document = valid_3()
    document["format"] = form
    document["chunking"]["zero_run"] = 4096
    if form == FORMAT_1:
        del document["chunking"]["zero_run"]
    rejected(document, "packs")
    del document["packs"]
    rejected(document, "chunks[0]", "pack")


# --- generated manifests with packs ------------------------------------------------------------


@st.composite
def packed_manifests(draw: st.DrawFn) -> Manifest:
    """Manifests whose stored chunks sit in packs built by :class:`PackBuilder`, or alone."""
    spec = ChunkingSpec.fastcdc(4096)
    builder = PackBuilder(target=draw(st.integers(min_value=1, max_value=30_000)))
    pool = draw(st.lists(digests, min_size=1, max_size=6, unique=True))
    placed: dict[str, ChunkRef] = {}
    packs: list[PackRef] = []
    pending: list[str] = []
    chunks: list[ChunkRef] = []

    def take(closed: Any) -> None:
        if closed is None:
            return
        packs.append(closed.ref)
        for name, offset in closed.offsets.items():
            old = placed[name]
            placed[name] = ChunkRef(name, old.length, old.stored_length, closed.ref, offset)
            pending.remove(name)

    for _ in range(draw(st.integers(min_value=1, max_value=10))):
        if draw(st.booleans()):
            chunks.append(ChunkRef(None, draw(st.integers(min_value=1, max_value=spec.max_size)), 0))
            continue
        digest = draw(st.sampled_from(pool))
        if digest not in placed:
            length = spec.max_size
            stored = draw(st.integers(min_value=1, max_value=max_stored_length(length)))
            placed[digest] = ChunkRef(digest, length, stored)
            if draw(st.booleans()):
                pending.append(digest)
                if builder.add(digest, length, draw(st.binary(min_size=stored, max_size=stored))):
                    take(builder.close())
        chunks.append(ChunkRef(digest, placed[digest].length, 0))
    take(builder.close())
    assert not pending
    final = [chunk if chunk.digest is None else placed[chunk.digest] for chunk in chunks]
    return build_manifest(
        size=sum(chunk.length for chunk in final),
        digest=draw(digests),
        chunking=spec,
        level=2,
        chunks=final,
        packs=packs,
    )


@settings(max_examples=80, deadline=None)
@given(manifest=packed_manifests())
def test_packed_manifests_parse_back_equal_in_the_oldest_format_that_fits(manifest: Manifest) -> None:
    document = encode_manifest(manifest)
    assert parse_manifest(document) == manifest
    assert json.loads(document)["format"] == (FORMAT_3 if manifest.packs else FORMAT_1)
    objects = manifest.objects("g")
    assert sum(1 for key in objects if "/packs/" in key) == len(manifest.packs)
    for chunk in manifest.chunks:
        if chunk.digest is not None:
            key, offset = chunk.location("g")
            assert offset + chunk.stored_length <= objects[key]


def test_manifests_keep_their_formats_when_nothing_is_packed() -> None:
    document = copy.deepcopy(valid_3())
    manifest = parse_manifest(encode(document))
    assert manifest.format == FORMAT_3
    plain = build_manifest(
        size=manifest.size,
        digest=manifest.digest,
        chunking=ChunkingSpec.fastcdc(4096, zero_run=4096),
        level=2,
        chunks=[ChunkRef(c.digest, c.length, c.stored_length) for c in manifest.chunks],
    )
    assert plain.format == FORMAT_2
