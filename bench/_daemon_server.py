"""The daemon the daemon benchmark measures: a real ``blobrep serve`` process, and its probes.

:class:`Daemon` starts ``blobrep serve`` on a free loopback port of a prepared home (its JSON
request log goes to a file), waits for ``/livez``, and stops it with SIGTERM as a service
manager does (the exit status must be 0). While it runs, the benchmark reads the process's
CPU time (``/proc/PID/stat``, every thread) and its peak RSS (``VmHWM`` in
``/proc/PID/status``), which it resets before each timed step by writing ``5`` to
``/proc/PID/clear_refs`` (Linux 4.0+), so each step reports its own peak rather than the
process's lifetime one. With ``profile`` the daemon runs under ``python -m cProfile`` (the
event loop's thread only; worker threads are not profiled), which writes its statistics when
the daemon exits.

:class:`Api` is the benchmark's own untimed client for setup (galleries, definitions) and
the timed upload: the two requests of a version created over HTTP (``PUT .../versions/{v}``,
then ``PUT .../versions/{v}/content`` with the disk streamed as the raw body,
``Content-Length`` set).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import httpx
from _harness import KIB, MIB

ADMIN: Final = "admin"
"""The bootstrap admin of a fresh home (the service's default), who gets the benchmark's token."""
START_TIMEOUT_S: Final = 60.0
STOP_TIMEOUT_S: Final = 120.0
UPLOAD_BLOCK: Final = 1 * MIB
"""Bytes the upload client reads from the image and hands to httpx at a time."""
HTTP_TIMEOUT_S: Final = 600.0


class DaemonError(RuntimeError):
    """The daemon did not start, answered unexpectedly, or did not stop cleanly."""


def blobrep_env() -> dict[str, str]:
    """This environment without ``BLOBREP_*`` (the home is always given with ``--home``)."""
    return {name: value for name, value in os.environ.items() if not name.startswith("BLOBREP_")}


def blobrep(home: Path, *args: str) -> str:
    """``blobrep --home HOME ARGS`` (untimed) on this interpreter; its standard output."""
    argv = [sys.executable, "-m", "blobrep", "--home", str(home), *args]
    done = subprocess.run(argv, capture_output=True, text=True, env=blobrep_env(), check=False)
    if done.returncode != 0:
        raise DaemonError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout


def make_token(home: Path) -> str:
    """A bearer token of the home's bootstrap admin (``blobrep token create``)."""
    return str(json.loads(blobrep(home, "token", "create", "--principal", ADMIN))["token"])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Daemon:
    """A running ``blobrep serve``; see the module docstring."""

    def __init__(self, home: Path, log_path: Path, *, profile: Path | None = None) -> None:
        self.home = home
        self.log_path = log_path
        self.profile = profile
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        runner = ["-m", "cProfile", "-o", str(profile)] if profile is not None else []
        argv = [sys.executable, *runner, "-m", "blobrep", "--home", str(home), "serve"]
        argv += ["--port", str(self.port)]
        self._log = open(log_path, "ab")  # noqa: SIM115 - open while the daemon runs
        self.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log, env=blobrep_env()
        )
        self.pid = self.process.pid
        self._wait_live()

    def _wait_live(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._log.close()
                raise DaemonError(f"blobrep serve exited {self.process.returncode}: {self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/livez", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        self.process.kill()
        self.process.wait()
        self._log.close()
        raise DaemonError(f"blobrep serve did not answer /livez within {START_TIMEOUT_S:.0f} s")

    def log_tail(self, lines: int = 5) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def cpu_times(self) -> tuple[float, float]:
        """User and system CPU seconds the daemon has used so far, every thread."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # After the command name: state is field 3, utime 14 and stime 15 (1-based, man proc).
        tick = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / tick, int(fields[12]) / tick

    def _status(self, field: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        raise DaemonError(f"/proc/{self.pid}/status has no {field}")

    def rss_kib(self) -> int:
        return self._status("VmRSS")

    def peak_rss_kib(self) -> int:
        """The daemon's peak RSS since it started or since the last :meth:`reset_peak`."""
        return self._status("VmHWM")

    def reset_peak(self) -> bool:
        """Reset the peak RSS to the current RSS; False if this kernel does not allow it."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return self.peak_rss_kib() <= self.rss_kib() + 4 * KIB

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it; it must exit 0 within the timeout."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise DaemonError(f"blobrep serve did not stop within {STOP_TIMEOUT_S:.0f} s") from None
            finally:
                self._log.close()
        if self.process.returncode != 0:
            raise DaemonError(f"blobrep serve exited {self.process.returncode}: {self.log_tail()}")


# --- the benchmark's own client ----------------------------------------------------------------


def version_path(gallery: str, image: str, version: str) -> str:
    return f"/galleries/{gallery}/images/{image}/versions/{version}"


def version_body(region: str, replicas: int) -> dict[str, Any]:
    """A version PUT body: ``replicas`` replicas in ``region``, the disk from its upload route."""
    target = {"name": region, "regionalReplicaCount": replicas}
    return {"location": region, "properties": {"publishingProfile": {"targetRegions": [target]}}}


def _blocks(path: Path) -> Iterator[bytes]:
    with open(path, "rb", buffering=0) as source:
        while block := source.read(UPLOAD_BLOCK):
            yield block


class Api:
    """Requests to the daemon as its bootstrap admin, one keep-alive connection."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self.client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT_S
        )

    def close(self) -> None:
        self.client.close()

    def _expect(self, response: httpx.Response, *statuses: int) -> dict[str, Any]:
        if response.status_code not in statuses:
            raise DaemonError(
                f"{response.request.method} {response.request.url.path} answered"
                f" {response.status_code}: {response.text[:500]}"
            )
        body: dict[str, Any] = response.json() if response.content else {}
        return body

    def put_gallery(self, gallery: str, region: str) -> None:
        self._expect(self.client.put(f"/galleries/{gallery}", json={"location": region}), 200, 201)

    def put_definition(self, gallery: str, image: str) -> None:
        identifier = {"publisher": "bench", "offer": "synthetic", "sku": image}
        body = {"properties": {"identifier": identifier, "osType": "Linux"}}
        self._expect(self.client.put(f"/galleries/{gallery}/images/{image}", json=body), 200, 201)

    def create_version(
        self, gallery: str, image: str, version: str, source: Path, *, region: str, replicas: int
    ) -> dict[str, Any]:
        """The two requests of a version created over HTTP; the published version's resource.

        The disk is streamed from ``source`` in :data:`UPLOAD_BLOCK` pieces, never held whole.
        """
        path = version_path(gallery, image, version)
        created = self._expect(self.client.put(path, json=version_body(region, replicas)), 201)
        if created["properties"]["provisioningState"] != "Creating":
            raise DaemonError(f"PUT {path} answered {created['properties']['provisioningState']}")
        size = source.stat().st_size
        headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
        published = self._expect(
            self.client.put(f"{path}/content", content=_blocks(source), headers=headers), 200
        )
        properties = published["properties"]
        if (
            properties["provisioningState"] != "Succeeded"
            or properties["storageProfile"]["sizeInBytes"] != size
        ):
            raise DaemonError(f"PUT {path}/content left the version {json.dumps(properties)[:500]}")
        return published
