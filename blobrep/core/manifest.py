"""The manifest, formats ``blobrep.manifest/1`` and ``/2``: what makes a blob readable in a replica.

A manifest lists a blob's chunks in order; offsets are implied by the running sum of
lengths. Writing it is the commit point of a publish or a replication, so it is written only
after every chunk it names is durable.

Format 2 is format 1 with chunking ended by zero runs (``"zero_run": 4096`` in ``chunking``,
:mod:`blobrep.core.chunking`): a data chunk may then be shorter than ``min_size`` where a zero
run follows it. A manifest is written in the oldest format that can say what it holds, so
blobs chunked without zero runs keep format 1, byte for byte; both formats are read.

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

A manifest is input like any other: :func:`parse_manifest` checks every field's type and
range, that lengths add up to the size, that chunk lengths respect the chunking parameters,
that no key outside the store can be derived from it, and rejects unknown fields, duplicate
JSON keys and oversized documents. It never returns a half-trusted manifest.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from blobrep.core.chunking import ChunkingSpec
from blobrep.core.codec import max_stored_length, validate_level
from blobrep.core.keys import is_digest
from blobrep.errors import BlobrepError, ManifestError

FORMAT_1: Final = "blobrep.manifest/1"
FORMAT_2: Final = "blobrep.manifest/2"
#: The formats this version reads (and writes, as :func:`format_of` chooses).
FORMATS: Final = (FORMAT_1, FORMAT_2)
#: No blob may be larger than this (1 PiB); it bounds arithmetic and stops absurd input.
MAX_BLOB_SIZE: Final = 1 << 50
#: A manifest document larger than this is refused before it is parsed.
MAX_MANIFEST_BYTES: Final = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """One entry of a manifest: a stored chunk (``digest`` set) or a run of zeros (``None``)."""

    digest: str | None
    length: int
    stored_length: int

    @property
    def is_zero(self) -> bool:
        return self.digest is None


@dataclass(frozen=True, slots=True)
class Manifest:
    """A parsed, consistent manifest."""

    size: int
    digest: str
    chunking: ChunkingSpec
    level: int
    chunks: tuple[ChunkRef, ...]
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

    @property
    def format(self) -> str:
        """The format this manifest is written in: 2 for chunking ended by zero runs, else 1."""
        return FORMAT_1 if self.chunking.zero_run is None else FORMAT_2

    @property
    def zero_bytes(self) -> int:
        """Bytes of the blob that are zero chunks (holes on restore)."""
        return sum(chunk.length for chunk in self.chunks if chunk.digest is None)

    def to_json(self) -> dict[str, Any]:
        """The document form, ready for :func:`encode_manifest`."""
        chunks: list[dict[str, Any]] = []
        for chunk in self.chunks:
            if chunk.digest is None:
                chunks.append({"zero": True, "length": chunk.length})
            else:
                chunks.append(
                    {
                        "digest": chunk.digest,
                        "length": chunk.length,
                        "stored_length": chunk.stored_length,
                    }
                )
        return {
            "format": self.format,
            "size": self.size,
            "digest": self.digest,
            "chunking": self.chunking.to_json(),
            "compression": {"codec": "zstd", "level": self.level},
            "chunks": chunks,
        }


def build_manifest(
    *, size: int, digest: str, chunking: ChunkingSpec, level: int, chunks: Sequence[ChunkRef]
) -> Manifest:
    """Make a manifest from parts, checked by the same rules as a parsed one."""
    manifest = Manifest(size, digest, chunking, level, tuple(chunks))
    return parse_manifest(encode_manifest(manifest))


def encode_manifest(manifest: Manifest) -> bytes:
    """The canonical bytes of ``manifest`` (compact JSON, one trailing newline)."""
    text = json.dumps(manifest.to_json(), separators=(",", ":"), sort_keys=False)
    return text.encode("utf-8") + b"\n"


# --- parsing ----------------------------------------------------------------------------


def _fail(where: str, problem: str) -> ManifestError:
    return ManifestError(f"invalid manifest: {where} {problem}")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _fail(f"field {key!r}", "appears twice")
        result[key] = value
    return result


def _object(
    value: Any, where: str, required: set[str], optional: frozenset[str] = frozenset()
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, f"must be an object, not {type(value).__name__}")
    missing = required - value.keys()
    if missing:
        raise _fail(where, f"lacks field(s) {', '.join(sorted(missing))}")
    unknown = value.keys() - required - optional
    if unknown:
        raise _fail(where, f"has unknown field(s) {', '.join(sorted(unknown))}")
    return value


def _int(value: Any, where: str, low: int, high: int) -> int:
    # bool is an int in Python; a manifest saying "length": true is wrong, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(where, f"must be an integer, not {json.dumps(value)[:40]}")
    if not low <= value <= high:
        raise _fail(where, f"is {value}, outside {low}..{high}")
    return value


def _digest(value: Any, where: str) -> str:
    if not isinstance(value, str) or not is_digest(value):
        raise _fail(where, f"must be 32 lower-case hex characters, not {json.dumps(value)[:60]}")
    return value


def _parse_chunking(value: Any, form: str) -> ChunkingSpec:
    if form == FORMAT_1:
        obj = _object(value, "chunking", {"method", "min_size", "avg_size", "max_size"})
    else:
        obj = _object(value, "chunking", {"method", "min_size", "avg_size", "max_size", "zero_run"})
    method = obj["method"]
    if method not in ("fastcdc", "fixed"):
        raise _fail("chunking.method", f"is {json.dumps(method)[:40]}, expected 'fastcdc' or 'fixed'")
    sizes = [
        _int(obj[name], f"chunking.{name}", 1, MAX_BLOB_SIZE) for name in ("min_size", "avg_size", "max_size")
    ]
    zero_run = None if form == FORMAT_1 else _int(obj["zero_run"], "chunking.zero_run", 1, MAX_BLOB_SIZE)
    try:
        return ChunkingSpec(method, sizes[0], sizes[1], sizes[2], zero_run).validated()
    except BlobrepError as exc:
        raise _fail("chunking", str(exc)) from exc


def _parse_chunk(value: Any, index: int, spec: ChunkingSpec) -> ChunkRef:
    where = f"chunks[{index}]"
    if isinstance(value, dict) and "zero" in value:
        obj = _object(value, where, {"zero", "length"})
        if obj["zero"] is not True:
            raise _fail(f"{where}.zero", "must be true when present")
        length = _int(obj["length"], f"{where}.length", 1, spec.max_size)
        return ChunkRef(None, length, 0)
    obj = _object(value, where, {"digest", "length", "stored_length"})
    digest = _digest(obj["digest"], f"{where}.digest")
    length = _int(obj["length"], f"{where}.length", 1, spec.max_size)
    stored = _int(obj["stored_length"], f"{where}.stored_length", 1, max_stored_length(length))
    return ChunkRef(digest, length, stored)


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
    obj = _object(raw, "document", {"format", "size", "digest", "chunking", "compression", "chunks"})
    form = obj["format"]
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
    raw_chunks = obj["chunks"]
    if not isinstance(raw_chunks, list):
        raise _fail("chunks", f"must be a list, not {type(raw_chunks).__name__}")
    chunks = [_parse_chunk(value, index, spec) for index, value in enumerate(raw_chunks)]
    total = sum(chunk.length for chunk in chunks)
    if total != size:
        raise _fail("chunks", f"add up to {total} bytes but size is {size}")
    _check_lengths(chunks, spec)
    return Manifest(size, digest, spec, level, tuple(chunks))
