"""The daemon limits glibc's malloc arenas, so what its worker threads free is reused."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="only glibc has malloc arenas to limit")
def test_the_arena_limit_takes_on_glibc_and_threads_then_share_two_arenas() -> None:
    """In a fresh process (the limit is for the whole process): after the limit, sixteen
    threads that each allocate end up in at most two arenas, where glibc would otherwise
    give most of them one of their own (``malloc_info`` lists one ``<heap>`` per arena)."""
    program = """
import ctypes, os, tempfile, threading
from blobrep.daemon.memory import limit_malloc_arenas
assert limit_malloc_arenas() is True
barrier = threading.Barrier(16)
def work():
    held = [bytearray(16 * 1024) for _ in range(64)]
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(16)]
[t.start() for t in threads]; [t.join() for t in threads]
libc = ctypes.CDLL(None)
libc.fdopen.restype = ctypes.c_void_p
libc.fdopen.argtypes = (ctypes.c_int, ctypes.c_char_p)
libc.malloc_info.argtypes = (ctypes.c_int, ctypes.c_void_p)
libc.fclose.argtypes = (ctypes.c_void_p,)
with tempfile.TemporaryFile() as out:
    stream = libc.fdopen(os.dup(out.fileno()), b"w")
    libc.malloc_info(0, stream); libc.fclose(stream)
    out.seek(0)
    print(out.read().decode().count("<heap nr="))
"""
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert int(done.stdout.strip()) <= 2, done.stdout
