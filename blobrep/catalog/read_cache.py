"""Answers of the catalog's reads, kept while the catalog stays unchanged.

A daemon answers thousands of requests a second from a catalog that changes a few times a
minute, and turning rows back into galleries, versions, principals and role assignments
costs more than the SQL itself: a list of ten versions takes a fifth of a millisecond to
decode, on the same interpreter lock the event loop needs. So the connection keeps what its
reads decoded and hands it out again for as long as nothing was committed since.

"Nothing was committed" is SQLite's to say, not a timer's: ``PRAGMA data_version`` changes
whenever another connection (another process: ``blobrep`` beside a daemon) commits, and this
connection counts its own writes. The pair is read at the start of every read transaction,
where it also fixes the snapshot that the transaction's reads see, so an answer is never
older than the snapshot it is handed out in: a token revoked by ``blobrep token revoke`` a
moment before is refused by the next read.

Only answers are kept, never errors, and only values that cannot be changed in place
(frozen dataclasses, tuples, frozensets): lists and dicts are copied on the way out, so a
caller that sorts or edits one changes nothing for the next. The cache is bounded
(:data:`MAX_ANSWERS`; full, it starts again), and used by one thread at a time, as the
connection is.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Final, TypeVar

T = TypeVar("T")

#: The most answers kept at once; a full cache is emptied and fills again.
MAX_ANSWERS: Final = 4096

Generation = tuple[int, int]
"""``(PRAGMA data_version, writes by this connection)``: equal only while nothing changed."""


class ReadCache:
    """Decoded answers of one connection's reads for one state of the catalog."""

    __slots__ = ("_answers", "_generation", "hits", "misses")

    def __init__(self) -> None:
        self._generation: Generation | None = None
        self._answers: dict[Hashable, object] = {}
        self.hits = 0
        self.misses = 0

    def begin(self, generation: Generation) -> None:
        """A read transaction starts on the catalog as of ``generation``: answers kept for
        another state are dropped."""
        if generation != self._generation:
            self._answers.clear()
            self._generation = generation

    def answer(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The answer kept under ``key``, or ``compute()``'s, kept (what it raises is not)."""
        try:
            found = self._answers[key]
        except KeyError:
            pass
        else:
            self.hits += 1
            return found  # type: ignore[return-value]  # stored by this method under its key
        self.misses += 1
        value = compute()
        if len(self._answers) >= MAX_ANSWERS:
            self._answers.clear()
        self._answers[key] = value
        return value
