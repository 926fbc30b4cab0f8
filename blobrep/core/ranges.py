"""HTTP byte ranges and entity tags of a version's disk (RFC 9110 sections 8.8.3, 13 and 14).

Pure decisions a download makes before any byte is read:

* :func:`requested` reads a ``Range`` header against the disk's size: one satisfiable range
  (answered ``206`` with ``Content-Range``), nothing satisfiable (``416`` with ``bytes
  */size``), or ``None``: send the whole disk (``200``). The last covers what RFC 9110 lets a
  server ignore: no header, another unit, a malformed header, and several ranges (one disk
  image is not worth a ``multipart/byteranges`` body; a client that wants pieces asks for them
  one at a time, which is also what spreads them over the replicas). Several ranges of which
  none is satisfiable still get ``416``.
* :func:`entity_tag`, :func:`none_match` and :func:`if_range_holds`: the whole-blob digest is
  the disk's strong validator; ``If-None-Match`` compares weakly (``*`` matches any disk that
  exists), ``If-Range`` strongly, and a date in ``If-Range`` never matches (a disk has no
  modification time to compare with, so the whole disk is the safe answer).
* :func:`slices`: which part of which chunk makes up a range, from the chunks' offsets.

Numbers are read as ASCII digits only (Python's ``int`` would take Arabic-Indic digits or ``"1_0"``), and
a number longer than any size is taken as "beyond the end" without converting it, so no header
can make the parser slow or raise.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final

#: Digits beyond which a position is past the end of any disk (sizes stay below 2**50).
_LONGEST: Final = 20
_BEYOND: Final = 10**_LONGEST
_SPEC: Final = re.compile(r"([0-9]*)-([0-9]*)", re.ASCII)
# One entity tag of a list: optional weakness mark, then a quoted opaque tag, then a comma or
# the end. etagc is any visible character but the double quote (so a comma may sit inside).
_TAG: Final = re.compile(r'[ \t]*(W/)?"([\x21\x23-\x7e\x80-\xff]*)"[ \t]*(?:,|\Z)')


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes ``first`` to ``last`` of a disk, both included (``first <= last < size``)."""

    first: int
    last: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    def content_range(self, size: int) -> str:
        """The ``Content-Range`` value of a ``206`` answer."""
        return f"bytes {self.first}-{self.last}/{size}"


@dataclass(frozen=True, slots=True)
class Unsatisfiable:
    """A ``Range`` no byte of the disk satisfies: answered ``416``."""

    size: int

    @property
    def content_range(self) -> str:
        """The ``Content-Range`` value of a ``416`` answer."""
        return f"bytes */{self.size}"


def _position(digits: str) -> int:
    """``digits`` (one or more ASCII digits) as a number; :data:`_BEYOND` if longer than any size."""
    significant = digits.lstrip("0") or "0"
    return _BEYOND if len(significant) > _LONGEST else int(significant)


def _spec(text: str, size: int) -> ByteRange | Unsatisfiable | None:
    """One range-spec against ``size``; None if it is malformed."""
    match = _SPEC.fullmatch(text)
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text:
        if not last_text:
            return None
        suffix = _position(last_text)
        if suffix == 0 or size == 0:
            return Unsatisfiable(size)
        return ByteRange(max(0, size - suffix), size - 1)
    first = _position(first_text)
    last = _position(last_text) if last_text else None
    if last is not None and last < first:
        return None
    if first >= size:
        return Unsatisfiable(size)
    return ByteRange(first, size - 1 if last is None else min(last, size - 1))


def requested(header: str | None, size: int) -> ByteRange | Unsatisfiable | None:
    """What the ``Range`` header ``header`` asks of a disk of ``size`` bytes; see the module docstring.

    Returns:
        The one range to send (``206``); :class:`Unsatisfiable` (``416``); or None to send
        the whole disk (``200``): no header, another unit, malformed, or several ranges of
        which at least one could be satisfied.
    """
    if header is None:
        return None
    unit, equals, rest = header.strip().partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return None
    # A list in HTTP may hold empty elements and whitespace around the commas.
    parts = [part.strip(" \t") for part in rest.split(",")]
    specs = [_spec(part, size) for part in parts if part]
    if not specs:
        return None
    answers: list[ByteRange | Unsatisfiable] = []
    for spec in specs:
        if spec is None:
            return None
        answers.append(spec)
    if len(answers) == 1:
        return answers[0]
    if all(isinstance(answer, Unsatisfiable) for answer in answers):
        return Unsatisfiable(size)
    return None


def entity_tag(digest: str) -> str:
    """The strong ``ETag`` of a disk whose whole-blob digest is ``digest``."""
    return f'"{digest}"'


def _tags(header: str) -> list[tuple[bool, str]] | None:
    """The ``(weak, opaque tag)`` pairs of an entity-tag list, or None if it is malformed."""
    tags: list[tuple[bool, str]] = []
    position = 0
    text = header.strip(" \t")
    while position < len(text):
        match = _TAG.match(text, position)
        if match is None:
            return None
        tags.append((match.group(1) is not None, f'"{match.group(2)}"'))
        position = match.end()
        while position < len(text) and text[position] in " \t,":
            position += 1
    return tags


def none_match(header: str | None, etag: str) -> bool:
    """True if ``If-None-Match: header`` matches a disk tagged ``etag`` (so ``304``).

    The comparison is weak (``W/"x"`` matches ``"x"``); ``*`` matches any disk; a malformed
    header matches nothing, so the disk is sent.
    """
    if header is None:
        return False
    if header.strip(" \t") == "*":
        return True
    tags = _tags(header)
    return tags is not None and any(tag == etag for _, tag in tags)


def if_range_holds(header: str | None, etag: str) -> bool:
    """True if the ``Range`` of a request with ``If-Range: header`` applies to a disk tagged ``etag``.

    Only the same strong tag holds; a weak tag, a date or anything else means the client's
    copy may differ, so it gets the whole disk.
    """
    if header is None:
        return True
    tags = _tags(header)
    return tags is not None and tags == [(False, etag)]


def slices(
    offsets: Sequence[int], lengths: Sequence[int], wanted: ByteRange
) -> Iterator[tuple[int, int, int]]:
    """``(chunk index, bytes to skip, bytes to take)`` of each chunk that holds part of ``wanted``.

    ``offsets`` are the chunks' first bytes in the disk (ascending, from 0) and ``lengths``
    their lengths (each at least 1); ``wanted`` lies within the disk.
    """
    index = bisect_right(offsets, wanted.first) - 1
    end = wanted.last + 1
    while index < len(offsets) and offsets[index] < end:
        start = offsets[index]
        skip = max(wanted.first - start, 0)
        take = min(end, start + lengths[index]) - start - skip
        yield index, skip, take
        index += 1
