"""Leases name their holder's process: a holder this host can prove dead blocks nobody and leaves
no trace after the next acquisition; a live one, or one this host cannot judge, still counts."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import anyio
import pytest
from anyio.abc import Process

from blobrep.core.holders import Liveness, ProcessIdentity
from blobrep.core.keys import lease_key
from blobrep.engine.leases import hold_lease, list_leases
from blobrep.errors import BusyError, ConflictError
from blobrep.storage.local import LocalStore
from blobrep.storage.processes import this_process
from tests.engine.helpers import GALLERY
from tests.engine.test_leases import AgedStore, lease_keys

PUBLISH: Final = "publish of img/versions/1.0.0"
GC: Final = "garbage collection of gallery1"
HOUR: Final = 3600.0
PROJECT: Final = Path(__file__).resolve().parents[2]

#: Takes a lease with the default TTL (600 s) in a replica, says so, and keeps it until killed.
HOLD: Final = """
import sys

import anyio

from blobrep.engine.leases import hold_lease
from blobrep.storage.local import LocalStore


async def main() -> None:
    root, gallery, kind, holder = sys.argv[1:]
    store = LocalStore(root, name="replica-1", create=True)
    async with hold_lease(store, gallery, exclusive=kind == "exclusive", holder=holder):
        print("held", flush=True)
        await anyio.sleep(3600)


anyio.run(main)
"""


@asynccontextmanager
async def holder_process(store: LocalStore, *, exclusive: bool, holder: str) -> AsyncIterator[Process]:
    """Another process holding a lease on the gallery; killed (SIGKILL) on exit if still running."""
    kind = "exclusive" if exclusive else "shared"
    command = [sys.executable, "-c", HOLD, str(store.root), GALLERY, kind, holder]
    process = await anyio.open_process(command, cwd=PROJECT, stdout=subprocess.PIPE, stderr=None)
    try:
        assert process.stdout is not None
        said = b""
        with anyio.fail_after(60):
            while b"held" not in said:
                try:
                    said += await process.stdout.receive()
                except anyio.EndOfStream:
                    pytest.fail("the holder process ended before it held its lease (see its stderr)")
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        await process.aclose()


async def kill_hard(process: Process) -> None:
    """SIGKILL: the holder gets no chance to release its lease."""
    process.kill()
    await process.wait()


async def finished_pid() -> int:
    """The pid of a process that has exited (and been reaped): nothing runs under it now."""
    process = await anyio.open_process([sys.executable, "-c", "pass"])
    await process.wait()
    await process.aclose()
    return process.pid


async def plant_owned_lease(
    store: LocalStore, owner: ProcessIdentity, *, holder: str, exclusive: bool
) -> str:
    """A fresh lease (TTL 600 s) written as the process ``owner`` would, without the legacy
    "pid" and "host" fields, so that only "owner" can say where its holder runs."""
    key = lease_key(GALLERY, "cd" * 16, exclusive=exclusive)
    body = {"holder": holder, "exclusive": exclusive, "owner": owner.to_json(), "created": 0, "ttl": 600.0}
    await store.put(key, json.dumps(body).encode())
    return key


# --- a holder killed with SIGKILL ------------------------------------------------------


@pytest.mark.parametrize(
    ("dead_exclusive", "exclusive"),
    [(True, False), (True, True), (False, True), (False, False)],
    ids=[
        "killed-gc-then-publish",
        "killed-gc-then-gc",
        "killed-publish-then-gc",
        "killed-publish-then-publish",
    ],
)
async def test_a_killed_holder_blocks_nobody_and_its_lease_is_removed_by_the_next_acquirer(
    store: LocalStore, dead_exclusive: bool, exclusive: bool
) -> None:
    async with holder_process(store, exclusive=dead_exclusive, holder="a holder about to be killed") as child:
        [dead] = await lease_keys(store)
        await kill_hard(child)

    started = anyio.current_time()
    with anyio.fail_after(1):  # its TTL is 600 s: only knowing the holder is dead lets this through
        async with hold_lease(store, GALLERY, exclusive=exclusive, holder=PUBLISH, wait=60) as lease:
            assert anyio.current_time() - started < 1
            assert await lease_keys(store) == [lease.key], "the dead holder's lease is gone"
            assert lease.cleared == (dead,)
    assert await lease_keys(store) == []


async def test_a_holder_alive_in_another_process_still_blocks(store: LocalStore) -> None:
    async with holder_process(store, exclusive=True, holder="a running gc") as child:
        [found] = await list_leases(store, GALLERY)
        assert found.owner is not None and found.owner.pid == child.pid
        assert found.liveness is Liveness.ALIVE

        started = anyio.current_time()
        with pytest.raises(BusyError) as raised:
            async with hold_lease(store, GALLERY, exclusive=False, holder=PUBLISH, wait=0.3):
                pytest.fail("a live exclusive holder must block a writer")
        assert anyio.current_time() - started >= 0.3
        assert raised.value.retryable and not isinstance(raised.value, ConflictError)
        message = str(raised.value)
        for part in (
            "replica-1 is busy for 0.3s",
            "'gallery1'",
            "a running gc",
            found.owner.describe(),
            "retry later",
        ):
            assert part in message
        assert await lease_keys(store) == [found.key], "the live holder's lease is left alone"


# --- leases written by a process this host can judge ------------------------------------


async def test_a_lease_of_a_pid_no_longer_running_on_this_host_is_stale(store: LocalStore) -> None:
    gone = dataclasses.replace(
        await anyio.to_thread.run_sync(this_process), pid=await finished_pid(), started=None
    )
    planted = await plant_owned_lease(store, gone, holder="a vanished gc", exclusive=True)

    [found] = await list_leases(store, GALLERY)
    assert found.owner == gone and found.liveness is Liveness.DEAD
    assert f"pid {gone.pid} on {gone.host}" in found.describe()
    async with hold_lease(store, GALLERY, exclusive=True, holder=GC, wait=0) as lease:
        assert lease.cleared == (planted,)
    assert await lease_keys(store) == []


async def test_a_lease_from_an_earlier_boot_of_this_host_is_stale(store: LocalStore) -> None:
    me = await anyio.to_thread.run_sync(this_process)
    if not me.boot_id:
        pytest.skip("this platform has no boot id")
    # Our own pid and start time, so only the boot id tells this holder apart from us.
    before_reboot = dataclasses.replace(me, boot_id="00000000-0000-0000-0000-000000000000")
    assert before_reboot.boot_id != me.boot_id
    planted = await plant_owned_lease(store, before_reboot, holder="a gc before the reboot", exclusive=True)

    async with hold_lease(store, GALLERY, exclusive=False, holder=PUBLISH, wait=0) as lease:
        assert lease.cleared == (planted,)
    assert await lease_keys(store) == []


async def test_our_own_lease_is_never_judged_dead(store: LocalStore) -> None:
    async with hold_lease(store, GALLERY, exclusive=False, holder=PUBLISH) as held:
        [found] = await list_leases(store, GALLERY)
        assert found.owner == await anyio.to_thread.run_sync(this_process)
        assert found.liveness is Liveness.ALIVE
        assert f"pid {os.getpid()} on " in found.describe()
        with pytest.raises(BusyError, match=PUBLISH):
            async with hold_lease(store, GALLERY, exclusive=True, holder=GC, wait=0):
                pytest.fail("our own live shared lease must block an exclusive one")
        assert await lease_keys(store) == [held.key]


# --- holders this host cannot judge: TTL only -------------------------------------------


@pytest.mark.parametrize("where", ["another host", "another pid namespace"])
async def test_a_lease_this_host_cannot_judge_counts_until_its_ttl(store: LocalStore, where: str) -> None:
    me = await anyio.to_thread.run_sync(this_process)
    # A pid that runs nothing here: were it judged from this host's /proc, it would be dead.
    pid = await finished_pid()
    if where == "another host":
        owner = ProcessIdentity("build-7.example", "another-boot", "pid:[1]", pid, 12345)
    else:
        owner = dataclasses.replace(me, pid_namespace="pid:[4026599999]", pid=pid, started=12345)
    planted = await plant_owned_lease(store, owner, holder="a gc elsewhere", exclusive=True)

    with pytest.raises(BusyError) as raised:
        async with hold_lease(store, GALLERY, exclusive=False, holder=PUBLISH, wait=0):
            pytest.fail("a fresh lease of a holder this host cannot judge must block")
    assert f"a gc elsewhere (pid {pid} on {owner.host}, exclusive lease" in str(raised.value)

    aged = AgedStore(store, HOUR, [planted])
    async with hold_lease(aged, GALLERY, exclusive=False, holder=PUBLISH, wait=0) as lease:
        assert lease.cleared == ()
    assert await lease_keys(store) == [planted], "a lease stale by its TTL alone is left for gc"
