"""``task_group`` never lets an exception group out: the caller meets one error, as itself."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Callable

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given
from hypothesis import strategies as st

from blobrep.engine._concurrency import representative, task_group
from blobrep.errors import BlobrepError, ChunkMissingError, StorageError, StorageFullError


async def _raise(error: BaseException, delay: float = 0.0) -> None:
    """Raise ``error`` after ``delay`` seconds, even if a sibling's error cancels the group
    meanwhile: so that several tasks fail together."""
    with anyio.CancelScope(shield=True):
        await anyio.sleep(delay)
    raise error


async def _sleep_forever() -> None:
    await anyio.sleep_forever()


async def test_blobrep_errors_arrive_as_the_first_one_unwrapped() -> None:
    first = ChunkMissingError("d" * 32, "westus/replica-1")
    with pytest.raises(ChunkMissingError) as raised:
        async with task_group() as group:
            group.start_soon(_raise, first)
            group.start_soon(_raise, StorageError("later"), 0.05)
            group.start_soon(_sleep_forever)
    assert raised.value is first


async def test_a_blobrep_error_keeps_its_own_cause() -> None:
    cause = OSError(errno.ENOSPC, "No space left on device")
    full = StorageFullError("cannot write /data/vm.img: no space left on the device")
    full.__cause__ = cause
    with pytest.raises(StorageFullError) as raised:
        async with task_group() as group:
            group.start_soon(_raise, full)
    assert raised.value.__cause__ is cause


async def test_a_bug_beside_blobrep_errors_arrives_as_itself_chained_from_the_group() -> None:
    bug = KeyError("a bug")
    with pytest.raises(KeyError) as raised:
        async with task_group() as group:
            group.start_soon(_raise, StorageError("ordinary"))
            group.start_soon(_raise, bug, 0.01)
            group.start_soon(_raise, StorageError("also ordinary"), 0.01)
    assert raised.value is bug
    # A debug traceback still shows every error the tasks raised.
    group_error = raised.value.__cause__
    assert isinstance(group_error, BaseExceptionGroup)
    assert bug in group_error.exceptions


async def test_a_raw_os_error_from_a_task_is_not_hidden_in_a_group() -> None:
    with pytest.raises(OSError, match="No space left"):
        async with task_group() as group:
            group.start_soon(_raise, OSError(errno.ENOSPC, "No space left on device"))
            group.start_soon(_sleep_forever)


async def test_an_error_in_the_body_arrives_as_itself() -> None:
    with pytest.raises(StorageError, match="from the body"):
        async with task_group() as group:
            group.start_soon(_sleep_forever)
            await anyio.lowlevel.checkpoint()
            raise StorageError("from the body")


async def test_an_outer_cancellation_still_cancels_quietly() -> None:
    with anyio.move_on_after(0.05) as scope:
        async with task_group() as group:
            group.start_soon(_sleep_forever)
            group.start_soon(_sleep_forever)
    assert scope.cancelled_caught


_KINDS: dict[str, Callable[[int], BaseException]] = {
    "blobrep": lambda n: StorageError(f"ordinary {n}"),
    "bug": lambda n: ValueError(f"bug {n}"),
    "interrupt": lambda n: KeyboardInterrupt(f"interrupt {n}"),
    "exit": lambda n: SystemExit(n),
    "cancelled": lambda n: asyncio.CancelledError(f"cancelled {n}"),
}


@st.composite
def groups(draw: st.DrawFn) -> tuple[BaseExceptionGroup[BaseException], list[BaseException]]:
    """A group, nested at random, and its leaves in the order a traversal meets them."""
    kinds = draw(st.lists(st.sampled_from(sorted(_KINDS)), min_size=1, max_size=8))
    leaves = [_KINDS[kind](number) for number, kind in enumerate(kinds)]
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(leaves) - 1)), max_size=3)))
    parts: list[BaseException] = []
    start = 0
    for cut in [*cuts, len(leaves)]:
        piece = leaves[start:cut]
        if piece:
            parts.append(BaseExceptionGroup("nested", piece) if len(piece) > 1 else piece[0])
        start = cut
    return BaseExceptionGroup("outer", parts), leaves


@given(groups())
def test_the_representative_is_an_interruption_then_a_bug_then_a_blobrep_error(
    case: tuple[BaseExceptionGroup[BaseException], list[BaseException]],
) -> None:
    group, leaves = case
    chosen = representative(group)
    interrupts = [leaf for leaf in leaves if isinstance(leaf, (KeyboardInterrupt, SystemExit))]
    bugs = [leaf for leaf in leaves if isinstance(leaf, Exception) and not isinstance(leaf, BlobrepError)]
    ordinary = [leaf for leaf in leaves if isinstance(leaf, BlobrepError)]
    expected = (interrupts or bugs or ordinary or [None])[0]
    assert chosen is expected


def test_a_group_of_cancellations_alone_is_left_to_its_cancel_scope() -> None:
    cancelled = asyncio.CancelledError
    assert representative(BaseExceptionGroup("cancelled", [cancelled(), cancelled()])) is None
    mixed = BaseExceptionGroup("mixed", [cancelled(), StorageError("x")])
    assert isinstance(representative(mixed), StorageError)
