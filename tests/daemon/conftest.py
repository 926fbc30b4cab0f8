"""A real daemon on a free loopback port, over a home prepared with the CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from blobrep.service import SyntheticImage
from tests.cli.helpers import blobrep

GALLERY = "gal"
IMAGE = "img"
DEFINITION = ("-r", GALLERY, "-i", IMAGE)


@dataclass(frozen=True)
class Daemon:
    """A running ``blobrep serve``: its address, its home and a token per principal."""

    url: str
    home: Path
    cwd: Path
    tokens: dict[str, str]
    process: subprocess.Popen[str]

    def headers(self, principal: str | None = "admin") -> dict[str, str]:
        return {} if principal is None else {"Authorization": f"Bearer {self.tokens[principal]}"}

    def request(
        self, method: str, route: str, principal: str | None = "admin", params: dict[str, str] | None = None
    ) -> httpx.Response:
        """One request as ``principal`` (None: without a token), on a connection of its own."""
        return httpx.request(
            method, self.url + route, headers=self.headers(principal), params=params, timeout=30
        )

    def get(
        self, route: str, principal: str | None = "admin", params: dict[str, str] | None = None
    ) -> httpx.Response:
        return self.request("GET", route, principal, params)


def ok(cwd: Path, *args: str | Path) -> str:
    result = blobrep(*args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


#: The standard error of each daemon started here, by pid: a file, so that a daemon logging a
#: line per request never fills a pipe that nobody reads.
_LOGS: dict[int, Path] = {}


def log_of(process: subprocess.Popen[str]) -> str:
    """What the daemon wrote on standard error so far (its JSON log lines)."""
    return _LOGS[process.pid].read_text(errors="replace")


def start(cwd: Path, home: Path, *options: str) -> tuple[str, subprocess.Popen[str]]:
    """``blobrep serve [OPTIONS]`` on a free port, once it answers ``/livez``."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("BLOBREP_")}
    log = cwd / f"serve-{port}.log"
    with open(log, "w") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "blobrep", "--home", str(home), "serve", "--port", str(port), *options],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            text=True,
        )
    _LOGS[process.pid] = log
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"blobrep serve exited {process.returncode}: {log_of(process)}")
        try:
            if httpx.get(f"{url}/livez", timeout=1).status_code == 200:
                return url, process
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError("blobrep serve did not answer /livez within 30 s")


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    """SIGTERM, as a service manager stops it; its exit status and standard error."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    # A daemon started elsewhere keeps its standard error where its starter put it.
    return process.returncode, log_of(process) if process.pid in _LOGS else ""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A home holding ``gal/img`` 1.0.0 and 1.0.1; principals ``reader`` (Reader on the
    gallery) and ``nobody`` (no role); a token for each and for ``admin``; the daemon on it."""
    cwd = tmp_path_factory.mktemp("daemon")
    home = cwd / ".blobrep"
    image = cwd / "disk.raw"
    with open(image, "wb") as out:
        for block in SyntheticImage(2 * 1024 * 1024, seed=12).blocks():
            out.write(block)
    ok(cwd, "sig", "create", "-r", GALLERY, "--location", "westcentralus")
    fields = ("--publisher", "p", "--offer", "o", "--sku", "s", "--os-type", "Linux")
    ok(cwd, "sig", "image-definition", "create", *DEFINITION, *fields)
    for version in ("1.0.0", "1.0.1"):
        ok(cwd, "sig", "image-version", "create", *DEFINITION, "-e", version, "--source", image)
    for name in ("reader", "nobody"):
        ok(cwd, "principal", "create", "--name", name, "--type", "user")
    ok(
        cwd,
        "role",
        "assignment",
        "create",
        "--assignee",
        "reader",
        "--role",
        "Reader",
        "--scope",
        f"/galleries/{GALLERY}",
    )
    tokens = {
        name: json.loads(ok(cwd, "token", "create", "--principal", name))["token"]
        for name in ("admin", "reader", "nobody")
    }
    url, process = start(cwd, home)
    running = Daemon(url, home, cwd, tokens, process)
    try:
        yield running
    finally:
        if process.poll() is None:
            code, err = stop(process)
            assert code == 0, err
