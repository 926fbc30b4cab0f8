#!/usr/bin/env python3
"""Set up the development environment and run the project's main jobs.

Needs nothing but Python 3.11+: it creates ``.venv`` beside this repository, installs
blobrep with its development tools into it (again only when ``pyproject.toml`` changed),
then runs what was asked:

    python3 tools/dev.py demo     # publish and read back a VM-like image on the embedded default
    python3 tools/dev.py test     # ruff, ruff format --check, mypy --strict, import contracts, pytest
    python3 tools/dev.py bench    # the pipeline benchmark, then the replication benchmark

Extra arguments after ``test`` go to pytest; after ``demo`` to ``blobrep demo``. After
``bench`` they go to ``bench/pipeline.py``, and the ones both benchmarks take (``--quick``,
``--size``, ``--repeat``, ``--seed``) go to ``bench/replication.py`` too. One benchmark alone,
with its own arguments:

    python3 tools/dev.py bench pipeline [ARGS]       # bench/pipeline.py ARGS
    python3 tools/dev.py bench replication [ARGS]    # bench/replication.py ARGS
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".blobrep-installed"
BENCHMARKS = ("pipeline", "replication")
#: Arguments of ``bench/pipeline.py`` that ``bench/replication.py`` takes too: flags, options with a value.
SHARED_BENCH_FLAGS = ("--quick", "-h", "--help")
SHARED_BENCH_OPTIONS = ("--size", "--repeat", "--seed")


def _run(*args: str | Path) -> None:
    print("+", " ".join(str(arg) for arg in args), flush=True)
    result = subprocess.run([str(arg) for arg in args], cwd=ROOT, check=False)
    if result.returncode != 0:
        sys.exit(result.returncode)


def setup() -> None:
    """Create the virtual environment and install blobrep[dev] if anything changed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this script is what tells an old Python so
        sys.exit(f"blobrep needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted and (BIN / "blobrep").exists():
        return
    if not (BIN / "python").exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    _run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    _run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[dev]")
    STAMP.write_text(wanted)


def test(extra: list[str]) -> None:
    """Every check CI runs, in the order that fails fastest."""
    _run(BIN / "ruff", "check", ".")
    _run(BIN / "ruff", "format", "--check", ".")
    _run(BIN / "mypy")
    _run(BIN / "lint-imports")
    _run(BIN / "python", "-m", "pytest", *extra)


def shared_bench_args(extra: list[str]) -> list[str]:
    """The arguments in ``extra`` that every benchmark understands, with their values."""
    shared: list[str] = []
    keep_value = False
    for arg in extra:
        name, equals, _ = arg.partition("=")
        if keep_value:
            shared.append(arg)
            keep_value = False
        elif arg in SHARED_BENCH_FLAGS or (equals and name in SHARED_BENCH_OPTIONS):
            shared.append(arg)
        elif arg in SHARED_BENCH_OPTIONS:
            shared.append(arg)
            keep_value = True
    return shared


def bench(extra: list[str]) -> None:
    """``bench [ARGS]``: both benchmarks in turn; ``bench NAME [ARGS]``: that one only."""
    if extra and extra[0] in BENCHMARKS:
        _run(BIN / "python", ROOT / "bench" / f"{extra[0]}.py", *extra[1:])
        return
    _run(BIN / "python", ROOT / "bench" / "pipeline.py", *extra)
    _run(BIN / "python", ROOT / "bench" / "replication.py", *shared_bench_args(extra))


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in ("setup", "demo", "test", "bench"):
        sys.exit(__doc__)
    command, extra = sys.argv[1], sys.argv[2:]
    setup()
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    if command == "demo":
        _run(BIN / "blobrep", "demo", *extra)
    elif command == "test":
        test(extra)
    elif command == "bench":
        bench(extra)


if __name__ == "__main__":
    main()
