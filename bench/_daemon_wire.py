"""The floor of the download step: the same clients against a server that only sends bytes.

The download goal compares the daemon with a library read that moves no byte through a
socket. To tell what HTTP over loopback costs on this machine from what blobrep costs, the
benchmark also runs its download clients, unchanged (same ranges, same checks, same digests),
against this server: uvloop, as the daemon runs, answering each ``Range`` request with the
image's bytes from a memory map, in views of at most :data:`PIECE` bytes with the transport's
flow control, as the daemon sends them. It reads no chunk, decodes nothing, verifies nothing,
checks no token: no HTTP server of this design can serve these clients faster on this
machine, so its throughput is the ceiling of the daemon's.

It understands exactly the requests the benchmark's clients send (``HEAD``, and ``GET`` with
one ``Range: bytes=A-B``) and nothing else. Run as a script: ``_daemon_wire.py IMAGE PORT
ETAG`` prints ``ready`` once it listens, and serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import mmap
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Final, cast

from _daemon_server import free_port

#: Most bytes handed to the transport at once (the daemon's ``content.PIECE``).
PIECE: Final = 1024 * 1024

_RANGE: Final = re.compile(rb"^range: *bytes=(\d+)-(\d+)\r?$", re.IGNORECASE | re.MULTILINE)


class _Answer(asyncio.Protocol):
    """One connection: requests in order, each answered from the map."""

    def __init__(self, image: memoryview, etag: str) -> None:
        self._image = image
        self._etag = etag
        self._pending = b""
        self._requests: asyncio.Queue[bytes] = asyncio.Queue()
        self._writable = asyncio.Event()
        self._writable.set()
        self._transport: asyncio.Transport | None = None
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        stream = cast(asyncio.Transport, transport)
        self._transport = stream
        self._task = asyncio.get_running_loop().create_task(self._serve(stream))

    def data_received(self, data: bytes) -> None:
        self._pending += data
        while b"\r\n\r\n" in self._pending:
            head, self._pending = self._pending.split(b"\r\n\r\n", 1)
            self._requests.put_nowait(head)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _serve(self, transport: asyncio.Transport) -> None:
        size = len(self._image)
        while True:
            head = await self._requests.get()
            common = (
                f"content-type: application/octet-stream\r\netag: {self._etag}\r\naccept-ranges: bytes\r\n"
            )
            if head.startswith(b"HEAD "):
                transport.write(f"HTTP/1.1 200 OK\r\ncontent-length: {size}\r\n{common}\r\n".encode())
                continue
            wanted = _RANGE.search(head)
            if not head.startswith(b"GET ") or wanted is None:
                transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                transport.close()
                return
            first, last = int(wanted[1]), min(int(wanted[2]), size - 1)
            transport.write(
                f"HTTP/1.1 206 Partial Content\r\ncontent-length: {last - first + 1}\r\n"
                f"content-range: bytes {first}-{last}/{size}\r\n{common}\r\n".encode()
            )
            for start in range(first, last + 1, PIECE):
                await self._writable.wait()
                transport.write(self._image[start : min(last + 1, start + PIECE)])


async def _serve_until_terminated(image: memoryview, port: int, etag: str) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    server = await loop.create_server(lambda: _Answer(image, etag), "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await stop.wait()


def main(image_path: Path, port: int, etag: str) -> None:
    """Serve the image at ``image_path`` on ``port`` until SIGTERM."""
    import uvloop

    with open(image_path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        image = memoryview(mapped)
        try:
            uvloop.run(_serve_until_terminated(image, port, etag))
        finally:
            image.release()


class WireServer:
    """This module's server in a process of its own, for as long as the ``with`` block runs."""

    def __init__(self, image: Path, etag: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, __file__, str(image), str(self.port), etag],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != b"ready":
            self.process.kill()
            raise RuntimeError(f"the floor server did not start (exit {self.process.wait()})")

    def cpu_s(self) -> float:
        """CPU time (user and system) the server has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> WireServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.process.terminate()
        code = self.process.wait(timeout=30)
        assert self.process.stdout is not None
        self.process.stdout.close()
        if code != 0 and kind is None:
            raise RuntimeError(f"the floor server exited {code} on SIGTERM")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
