"""The manifest, formats ``blobrep.manifest/1`` to ``/3``: what makes a blob readable in a replica.

A manifest lists a blob's chunks in order; offsets are implied by the running sum of
lengths. Writing it is the commit point of a publish or a replication, so it is written only
after every chunk it names is durable.

Format 2 is format 1 with chunking ended by zero runs (``"zero_run": 4096`` in ``chunking``,
:mod:`blobrep.core.chunking`): a data chunk may then be shorter than ``min_size`` where a zero
run follows it. A manifest is written in the oldest format that can say what it holds, so
blobs chunked without zero runs keep format 1, byte for byte; every format is read.

Format 3 stores chunks in packs: objects that hold the zstd frames of many chunks back to back
(:mod:`blobrep.core.packs`), so a publish writes a few large objects rather than one file per
chunk. It adds ``packs``, each pack's xxh3-128 digest and size, and a chunk's ``pack`` (an
index into ``packs``) and ``offset`` (where its frame starts in the pack). A chunk without
``pack`` is its own object, as in formats 1 and 2, so a new version can reuse the chunks of
older ones where they are. ``zero_run`` is optional in its ``chunking``.

::

    {
      "format": "blobrep.manifest/1",
      "size": 1073741824,
      "digest": "<xxh3-128 of the whole blob>",
      "chunking": {"method": "fastcdc", "min_size": 262144, "avg_size": 1048576,
                   "max_size": 4194304},
      "compression": {"codec": "zstd", "level": 1},
      "chunks": [
        {"digest": "<xxh3-128>", "length": 1310720, "stored_length": 501234},
        {"zero": true, "length": 4194304},
        ...
      ]
    }

    format 3 adds:
      "packs": [{"digest": "<xxh3-128 of the pack's bytes>", "size": 8421033}, ...],
      "chunks": [{"digest": "...", "length": 1310720, "stored_length": 501234,
                  "pack": 0, "offset": 0}, ...]

A manifest is input like any other: :func:`parse_manifest` checks every field's type and
range, that lengths add up to the size, that chunk lengths respect the chunking parameters,
that every frame lies inside its pack without overlapping another, that every pack is used
and no chunk is stored in two places, that no key outside the store can be derived from it,
and rejects unknown fields, duplicate JSON keys and oversized documents. It never returns a
half-trusted manifest.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from blobrep.core._document import digest_field as _digest
from blobrep.core._document import fail as _fail
from blobrep.core._document import integer as _int
from blobrep.core._document import no_duplicates as _no_duplicates
from blobrep.core._document import object_fields as _object
from blobrep.core.chunking import ChunkingSpec
from blobrep.core.codec import max_stored_length, validate_level
from blobrep.core.keys import chunk_key, pack_key
from blobrep.core.packs import MAX_PACK_SIZE, PackRef
from blobrep.errors import BlobrepError, ManifestError

FORMAT_1: Final = "blobrep.manifest/1"
FORMAT_2: Final = "blobrep.manifest/2"
FORMAT_3: Final = "blobrep.manifest/3"
#: The formats this version reads (and writes, as :attr:`Manifest.format` chooses).
FORMATS: Final = (FORMAT_1, FORMAT_2, FORMAT_3)
#: No blob may be larger than this (1 PiB); it bounds arithmetic and stops absurd input.
MAX_BLOB_SIZE: Final = 1 << 50
#: A manifest document larger than this is refused before it is parsed.
MAX_MANIFEST_BYTES: Final = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """One entry of a manifest: a stored chunk (``digest`` set) or a run of zeros (``None``).

    A stored chunk's frame is its own object (``pack`` None) or ``stored_length`` bytes at
    ``offset`` in ``pack``.
    """

    digest: str | None
    length: int
    stored_length: int
    pack: PackRef | None = None
    offset: int = 0

    @property
    def is_zero(self) -> bool:
        return self.digest is None

    def location(self, gallery: str) -> tuple[str, int]:
        """The key of the object holding this chunk's frame, and where in it the frame starts."""
        if self.digest is None:
            raise ValueError("a zero chunk is not stored")
        if self.pack is None:
            return chunk_key(gallery, self.digest), 0
        return pack_key(gallery, self.pack.digest), self.offset

    def follows(self, previous: ChunkRef) -> bool:
        """True if this chunk's frame starts where ``previous``'s ends, in the same pack: one
        ranged read fetches both."""
        return (
            self.pack is not None
            and self.digest is not None
            and previous.pack == self.pack
            and previous.offset + previous.stored_length == self.offset
        )


@dataclass(frozen=True, slots=True)
class Manifest:
    """A parsed, consistent manifest."""

    size: int
    digest: str
    chunking: ChunkingSpec
    level: int
    chunks: tuple[ChunkRef, ...]
    packs: tuple[PackRef, ...] = ()
    _offsets: tuple[int, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        offsets = []
        position = 0
        for chunk in self.chunks:
            offsets.append(position)
            position += chunk.length
        object.__setattr__(self, "_offsets", tuple(offsets))

    def with_offsets(self) -> Iterator[tuple[int, ChunkRef]]:
        """Each chunk with the offset of its first byte in the blob."""
        return zip(self._offsets, self.chunks, strict=True)

    def offset(self, position: int) -> int:
        """The offset in the blob of the first byte of chunk number ``position``."""
        return self._offsets[position]

    def stored_digests(self) -> dict[str, ChunkRef]:
        """The distinct stored (non-zero) chunks, first occurrence kept, in order."""
        unique: dict[str, ChunkRef] = {}
        for chunk in self.chunks:
            if chunk.digest is not None and chunk.digest not in unique:
                unique[chunk.digest] = chunk
        return unique

    @property
    def stored_bytes(self) -> int:
        """Bytes the distinct chunks take in a replica."""
        return sum(chunk.stored_length for chunk in self.stored_digests().values())

    def objects(self, gallery: str) -> dict[str, int]:
        """Every object a replica needs to serve this blob, by key, with its size: the packs,
        then the chunks stored as their own objects, in order of first use."""
        needed = {pack_key(gallery, pack.digest): pack.size for pack in self.packs}
        for chunk in self.stored_digests().values():
            if chunk.digest is not None and chunk.pack is None:
                needed[chunk_key(gallery, chunk.digest)] = chunk.stored_length
        return needed

    @property
    def format(self) -> str:
        """The oldest format that can say what this manifest holds: 3 if it uses packs, else
        2 for chunking ended by zero runs, else 1."""
        if self.packs:
            return FORMAT_3
        return FORMAT_1 if self.chunking.zero_run is None else FORMAT_2

    @property
    def zero_bytes(self) -> int:
        """Bytes of the blob that are zero chunks (holes on restore)."""
        return sum(chunk.length for chunk in self.chunks if chunk.digest is None)

    def to_json(self) -> dict[str, Any]:
        """The document form, ready for :func:`encode_manifest`."""
        index = {pack.digest: position for position, pack in enumerate(self.packs)}
        chunks: list[dict[str, Any]] = []
        for chunk in self.chunks:
            if chunk.digest is None:
                chunks.append({"zero": True, "length": chunk.length})
                continue
            entry: dict[str, Any] = {
                "digest": chunk.digest,
                "length": chunk.length,
                "stored_length": chunk.stored_length,
            }
            if chunk.pack is not None:
                entry["pack"] = index[chunk.pack.digest]
                entry["offset"] = chunk.offset
            chunks.append(entry)
        document: dict[str, Any] = {
            "format": self.format,
            "size": self.size,
            "digest": self.digest,
            "chunking": self.chunking.to_json(),
            "compression": {"codec": "zstd", "level": self.level},
        }
        if self.packs:
            document["packs"] = [{"digest": pack.digest, "size": pack.size} for pack in self.packs]
        document["chunks"] = chunks
        return document


def build_manifest(
    *,
    size: int,
    digest: str,
    chunking: ChunkingSpec,
    level: int,
    chunks: Sequence[ChunkRef],
    packs: Sequence[PackRef] = (),
) -> Manifest:
    """Make a manifest from parts, checked by the same rules as a parsed one. ``packs`` lists
    the packs the chunks name, in the order the manifest lists them; one that no chunk names
    is refused."""
    manifest = Manifest(size, digest, chunking, level, tuple(chunks), tuple(packs))
    return parse_manifest(encode_manifest(manifest))


def encode_manifest(manifest: Manifest) -> bytes:
    """The canonical bytes of ``manifest`` (compact JSON, one trailing newline)."""
    text = json.dumps(manifest.to_json(), separators=(",", ":"), sort_keys=False)
    return text.encode("utf-8") + b"\n"


# --- parsing ----------------------------------------------------------------------------


def _parse_chunking(value: Any, form: str) -> ChunkingSpec:
    sizes_fields = {"method", "min_size", "avg_size", "max_size"}
    if form == FORMAT_1:
        obj = _object(value, "chunking", sizes_fields)
    elif form == FORMAT_2:
        obj = _object(value, "chunking", sizes_fields | {"zero_run"})
    else:
        obj = _object(value, "chunking", sizes_fields, frozenset({"zero_run"}))
    method = obj["method"]
    if method not in ("fastcdc", "fixed"):
        raise _fail("chunking.method", f"is {json.dumps(method)[:40]}, expected 'fastcdc' or 'fixed'")
    sizes = [
        _int(obj[name], f"chunking.{name}", 1, MAX_BLOB_SIZE) for name in ("min_size", "avg_size", "max_size")
    ]
    zero_run = None if "zero_run" not in obj else _int(obj["zero_run"], "chunking.zero_run", 1, MAX_BLOB_SIZE)
    try:
        return ChunkingSpec(method, sizes[0], sizes[1], sizes[2], zero_run).validated()
    except BlobrepError as exc:
        raise _fail("chunking", str(exc)) from exc


def _parse_packs(value: Any) -> list[PackRef]:
    if not isinstance(value, list):
        raise _fail("packs", f"must be a list, not {type(value).__name__}")
    packs: list[PackRef] = []
    seen: set[str] = set()
    for index, entry in enumerate(value):
        where = f"packs[{index}]"
        obj = _object(entry, where, {"digest", "size"})
        digest = _digest(obj["digest"], f"{where}.digest")
        if digest in seen:
            raise _fail(f"{where}.digest", f"names pack {digest} a second time")
        seen.add(digest)
        packs.append(PackRef(digest, _int(obj["size"], f"{where}.size", 1, MAX_PACK_SIZE)))
    return packs


def _parse_chunk(value: Any, index: int, spec: ChunkingSpec, packs: Sequence[PackRef] | None) -> ChunkRef:
    """One chunk entry; ``packs`` is None in formats without packs."""
    where = f"chunks[{index}]"
    if isinstance(value, dict) and "zero" in value:
        obj = _object(value, where, {"zero", "length"})
        if obj["zero"] is not True:
            raise _fail(f"{where}.zero", "must be true when present")
        length = _int(obj["length"], f"{where}.length", 1, spec.max_size)
        return ChunkRef(None, length, 0)
    located = frozenset() if packs is None else frozenset({"pack", "offset"})
    obj = _object(value, where, {"digest", "length", "stored_length"}, located)
    digest = _digest(obj["digest"], f"{where}.digest")
    length = _int(obj["length"], f"{where}.length", 1, spec.max_size)
    stored = _int(obj["stored_length"], f"{where}.stored_length", 1, max_stored_length(length))
    if packs is None or ("pack" not in obj and "offset" not in obj):
        return ChunkRef(digest, length, stored)
    if "pack" not in obj or "offset" not in obj:
        raise _fail(where, "needs both 'pack' and 'offset', or neither")
    if not packs:
        raise _fail(f"{where}.pack", "names a pack, but the manifest lists none")
    pack = packs[_int(obj["pack"], f"{where}.pack", 0, len(packs) - 1)]
    offset = _int(obj["offset"], f"{where}.offset", 0, pack.size - 1)
    if offset + stored > pack.size:
        raise _fail(where, f"ends at {offset + stored}, past the end of its {pack.size} byte pack")
    return ChunkRef(digest, length, stored, pack, offset)


def _check_locations(chunks: Sequence[ChunkRef], packs: Sequence[PackRef]) -> None:
    """Each stored chunk has one place; frames in a pack never overlap; every pack is used."""
    placed: dict[str, ChunkRef] = {}
    frames: dict[str, list[tuple[int, int, int]]] = {pack.digest: [] for pack in packs}
    for index, chunk in enumerate(chunks):
        if chunk.digest is None:
            continue
        first = placed.setdefault(chunk.digest, chunk)
        if first is not chunk:
            # Formats 1 and 2 never checked a repeated chunk's stored length (the first
            # counts); a frame in a pack is named by its offset and length, so both must agree.
            moved = (first.pack, first.offset) != (chunk.pack, chunk.offset)
            if moved or (chunk.pack is not None and first.stored_length != chunk.stored_length):
                raise _fail(f"chunks[{index}]", f"stores chunk {chunk.digest} somewhere else than before")
            continue
        if chunk.pack is not None:
            frames[chunk.pack.digest].append((chunk.offset, chunk.offset + chunk.stored_length, index))
    for position, pack in enumerate(packs):
        spans = sorted(frames[pack.digest])
        if not spans:
            raise _fail(f"packs[{position}]", "is named by no chunk")
        for (_, end, _), (start, _, index) in itertools.pairwise(spans):
            if start < end:
                raise _fail(f"chunks[{index}]", f"overlaps another chunk's frame in pack {pack.digest}")


def _check_lengths(chunks: Sequence[ChunkRef], spec: ChunkingSpec) -> None:
    """Every chunk but the last is at least ``min_size`` (fixed: exactly the size).

    Zero chunks are exempt from the lower bound: a writer may split a zero run anywhere. With
    zero runs (format 2) a data chunk followed by a zero chunk is too: it ends a segment.
    """
    for index, chunk in enumerate(chunks[:-1]):
        if chunk.digest is None:
            continue
        if spec.method == "fixed" and chunk.length != spec.max_size:
            raise _fail(f"chunks[{index}].length", f"is {chunk.length}, fixed chunks are {spec.max_size}")
        if spec.zero_run is not None and chunks[index + 1].digest is None:
            continue
        if chunk.length < spec.min_size:
            raise _fail(f"chunks[{index}].length", f"is {chunk.length}, below the minimum {spec.min_size}")


def parse_manifest(document: bytes) -> Manifest:
    """Parse and check a manifest document.

    Raises:
        ManifestError: saying which field is wrong and why.
    """
    if len(document) > MAX_MANIFEST_BYTES:
        raise ManifestError(
            f"invalid manifest: {len(document)} bytes is over the {MAX_MANIFEST_BYTES} byte limit"
        )
    try:
        raw = json.loads(document.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError as exc:
        raise ManifestError(f"invalid manifest: not UTF-8 text ({exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise ManifestError(
            f"invalid manifest: not valid JSON ({exc.msg} at line {exc.lineno}"
            f" column {exc.colno}); truncated?"
        ) from exc
    except RecursionError as exc:
        raise ManifestError("invalid manifest: nested too deeply") from exc
    except ValueError as exc:  # int() refuses numbers of more than 4300 digits
        raise ManifestError("invalid manifest: a number has too many digits") from exc
    if not isinstance(raw, dict):
        raise _fail("document", f"must be an object, not {type(raw).__name__}")
    form = raw.get("format")
    fields = {"format", "size", "digest", "chunking", "compression", "chunks"}
    obj = _object(raw, "document", fields | {"packs"} if form == FORMAT_3 else fields)
    if form not in FORMATS:
        raise _fail("format", f"is {json.dumps(form)[:60]}, expected {' or '.join(map(repr, FORMATS))}")
    size = _int(obj["size"], "size", 0, MAX_BLOB_SIZE)
    digest = _digest(obj["digest"], "digest")
    spec = _parse_chunking(obj["chunking"], form)
    compression = _object(obj["compression"], "compression", {"codec", "level"})
    if compression["codec"] != "zstd":
        raise _fail("compression.codec", f"is {json.dumps(compression['codec'])[:40]}, expected 'zstd'")
    try:
        level = validate_level(compression["level"])
    except BlobrepError as exc:
        raise _fail("compression.level", str(exc)) from exc
    packs = _parse_packs(obj["packs"]) if form == FORMAT_3 else None
    if packs is not None and not packs:
        raise _fail("packs", f"is empty; a manifest without packs is written as {FORMAT_2} or {FORMAT_1}")
    raw_chunks = obj["chunks"]
    if not isinstance(raw_chunks, list):
        raise _fail("chunks", f"must be a list, not {type(raw_chunks).__name__}")
    chunks = [_parse_chunk(value, index, spec, packs) for index, value in enumerate(raw_chunks)]
    total = sum(chunk.length for chunk in chunks)
    if total != size:
        raise _fail("chunks", f"add up to {total} bytes but size is {size}")
    _check_lengths(chunks, spec)
    _check_locations(chunks, packs or ())
    return Manifest(size, digest, spec, level, tuple(chunks), tuple(packs or ()))
