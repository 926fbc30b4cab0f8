#!/usr/bin/env python3
"""Set up the development environment and run the project's main jobs.

Needs nothing but Python 3.11+: it creates ``.venv`` beside this repository, installs
blobrep with its development tools into it (``.[dev]``; ``.[dev,bench]`` for ``bench``, which
adds matplotlib for the plots), again only when ``pyproject.toml`` changed or an extra is
missing, then runs what was asked:

    python3 tools/dev.py demo     # publish and read back a VM-like image on the embedded default
    python3 tools/dev.py test     # ruff, ruff format --check, mypy --strict, import contracts, pytest
    python3 tools/dev.py bench    # pipeline, replication, deploy, cli, daemon, regions benchmarks in turn
    python3 tools/dev.py services start|stop|status   # the S3 and Azure Blob servers of the tests

``test`` starts those servers (SeaweedFS and Azurite, see ``tools/services.py``) before
pytest, with their coordinates in the environment, and stops them afterwards, even when a
test fails; a server that cannot be installed or started fails the run with why.

Extra arguments after ``test`` go to pytest; after ``demo`` to ``blobrep demo``. After
``bench`` they go to ``bench/pipeline.py``; the ones both take (``--quick``, ``--size``,
``--repeat``, ``--seed``) go to ``bench/replication.py`` and ``bench/daemon.py`` too, and
``--quick`` (or ``--help``) to ``bench/deploy.py``, ``bench/cli.py`` and ``bench/regions.py``,
which have their own images and counts. One benchmark alone, with its own arguments:

    python3 tools/dev.py bench pipeline [ARGS]       # bench/pipeline.py ARGS
    python3 tools/dev.py bench replication [ARGS]    # bench/replication.py ARGS
    python3 tools/dev.py bench deploy [ARGS]         # bench/deploy.py ARGS
    python3 tools/dev.py bench cli [ARGS]            # bench/cli.py ARGS
    python3 tools/dev.py bench daemon [ARGS]         # bench/daemon.py ARGS
    python3 tools/dev.py bench regions [ARGS]        # bench/regions.py ARGS
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

import services

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".blobrep-installed"
BENCHMARKS = ("pipeline", "replication", "deploy", "cli", "daemon", "regions")
#: Arguments of ``bench/pipeline.py`` that ``bench/replication.py`` takes too: flags, options with a value.
SHARED_BENCH_FLAGS = ("--quick", "-h", "--help")
SHARED_BENCH_OPTIONS = ("--size", "--repeat", "--seed")
#: The extras ``bench`` installs; every other command installs ``dev`` alone.
BENCH_EXTRAS = ("dev", "bench")


def _run(*args: str | Path) -> None:
    print("+", " ".join(str(arg) for arg in args), flush=True)
    result = subprocess.run([str(arg) for arg in args], cwd=ROOT, check=False)
    if result.returncode != 0:
        sys.exit(result.returncode)


def setup(extras: tuple[str, ...] = ("dev",)) -> None:
    """Create the virtual environment and install blobrep[extras] if anything changed.

    The stamp records the digest of ``pyproject.toml`` and the extras installed with it, so
    a changed ``pyproject.toml`` or an extra not installed yet triggers an install, and
    nothing else does.
    """
    if sys.version_info < (3, 11):  # noqa: UP036 - this script is what tells an old Python so
        sys.exit(f"blobrep needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = STAMP.read_text().split() if STAMP.exists() else []
    installed = set(stamp[1:]) if stamp[:1] == [wanted] else set()
    if set(extras) <= installed and (BIN / "blobrep").exists():
        return
    if not (BIN / "python").exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    _run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    _run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[{','.join(extras)}]")
    STAMP.write_text(" ".join([wanted, *sorted(installed | set(extras))]))


def test(extra: list[str]) -> None:
    """Every check CI runs, in the order that fails fastest; the servers only around pytest."""
    _run(BIN / "ruff", "check", ".")
    _run(BIN / "ruff", "format", "--check", ".")
    _run(BIN / "mypy")
    _run(BIN / "lint-imports")
    try:
        os.environ.update(services.start())
    except services.ServiceError as exc:
        sys.exit(f"the test servers could not start: {exc}")
    try:
        _run(BIN / "python", "-m", "pytest", *extra)
    finally:
        services.stop()


def shared_bench_args(
    extra: list[str],
    flags: tuple[str, ...] = SHARED_BENCH_FLAGS,
    options: tuple[str, ...] = SHARED_BENCH_OPTIONS,
) -> list[str]:
    """The arguments in ``extra`` among ``flags`` and ``options`` (with their values)."""
    shared: list[str] = []
    keep_value = False
    for arg in extra:
        name, equals, _ = arg.partition("=")
        if keep_value:
            shared.append(arg)
            keep_value = False
        elif arg in flags or (equals and name in options):
            shared.append(arg)
        elif arg in options:
            shared.append(arg)
            keep_value = True
    return shared


def bench(extra: list[str]) -> None:
    """``bench [ARGS]``: every benchmark in turn; ``bench NAME [ARGS]``: that one only."""
    if extra and extra[0] in BENCHMARKS:
        _run(BIN / "python", ROOT / "bench" / f"{extra[0]}.py", *extra[1:])
        return
    _run(BIN / "python", ROOT / "bench" / "pipeline.py", *extra)
    _run(BIN / "python", ROOT / "bench" / "replication.py", *shared_bench_args(extra))
    _run(BIN / "python", ROOT / "bench" / "deploy.py", *shared_bench_args(extra, options=()))
    _run(BIN / "python", ROOT / "bench" / "cli.py", *shared_bench_args(extra, options=()))
    _run(BIN / "python", ROOT / "bench" / "daemon.py", *shared_bench_args(extra))
    _run(BIN / "python", ROOT / "bench" / "regions.py", *shared_bench_args(extra, options=()))


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in ("setup", "demo", "test", "bench", "services"):
        sys.exit(__doc__)
    command, extra = sys.argv[1], sys.argv[2:]
    setup(BENCH_EXTRAS if command == "bench" else ("dev",))
    if command == "services":
        sys.exit(services.main(extra))
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    if command == "demo":
        _run(BIN / "blobrep", "demo", *extra)
    elif command == "test":
        test(extra)
    elif command == "bench":
        bench(extra)


if __name__ == "__main__":
    main()
