"""The S3 and Azure Blob servers ``bench/regions.py`` runs against.

If the environment already reaches both servers (the variables ``tools/services.py start``
prints), they are used as they are. Otherwise the benchmark starts its own SeaweedFS and
Azurite on loopback with ``tools/services.py`` (its ``start``: installed from the registries
once, fresh data, free ports, ready when a signed request succeeds), puts the variables it
returns into ``os.environ`` (every child inherits them) and stops them when the run ends,
failed or not (on SIGTERM too). Its servers keep their data and their pids under the run's
own directory rather than ``.services/run``, so a ``tools/dev.py test`` or ``services start``
in the same checkout neither stops them nor is stopped by them.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, Final

from _harness import log

SERVICES: Final = Path(__file__).resolve().parent.parent / "tools" / "services.py"
BUCKET: Final = "blobrep-test"

#: What each kind needs in the environment (the test bucket's URL has a default).
VARIABLES: Final = {
    "s3": ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ALLOW_HTTP"),
    "azure": (
        "AZURE_STORAGE_ACCOUNT_NAME",
        "AZURE_STORAGE_ACCOUNT_KEY",
        "AZURE_STORAGE_ENDPOINT",
        "AZURE_ALLOW_HTTP",
    ),
}
BUCKET_VARIABLES: Final = {"s3": "BLOBREP_TEST_S3_URL", "azure": "BLOBREP_TEST_AZURE_URL"}
DEFAULT_BUCKETS: Final = {"s3": f"s3://{BUCKET}", "azure": f"az://{BUCKET}"}
START_ATTEMPTS: Final = 2
"""A server can die while starting on a busy machine; one more try before giving up."""


class ServersError(RuntimeError):
    """The servers could not be started; the message says why."""


def missing_variables() -> list[str]:
    return [name for names in VARIABLES.values() for name in names if not os.environ.get(name)]


def bucket_url(kind: str) -> str:
    """The test bucket (or container) URL of ``kind``, perhaps with a prefix of its own."""
    return os.environ.get(BUCKET_VARIABLES[kind]) or DEFAULT_BUCKETS[kind]


@functools.cache
def _services() -> Any:
    """``tools/services.py`` (standard library only), loaded as a module of its own."""
    spec = importlib.util.spec_from_file_location("_bench_services", SERVICES)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _start(where: Path) -> dict[str, str]:
    """``services.start()`` with its run directory (data, logs, pids) in ``where``."""
    services = _services()
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            exports: dict[str, str] = services.start(where)
            return exports
        except services.ServiceError as exc:
            if attempt == START_ATTEMPTS:
                raise ServersError(f"the S3 and Azure servers could not start: {exc}") from None
            log(f"object stores: {exc}; trying once more")
    raise AssertionError("unreachable")


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def object_servers(where: Path) -> Iterator[str]:
    """The servers for the run: ``"environment"`` if given, ``"started"`` if started here (in
    ``where``, stopped on the way out)."""
    missing = missing_variables()
    if not missing:
        log("object stores: using the servers the environment names")
        yield "environment"
        return
    log(f"object stores: {', '.join(missing)} not set; starting SeaweedFS and Azurite (tools/services.py)")
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        exports = _start(where)
        saved = {name: os.environ.get(name) for name in exports}
        os.environ.update(exports)
        try:
            yield "started"
        finally:
            for name, before in saved.items():
                if before is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = before
    finally:
        _services().stop(where)
        signal.signal(signal.SIGTERM, previous)
