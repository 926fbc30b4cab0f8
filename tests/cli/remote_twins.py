"""Twin homes for the CLI's remote tests: a daemon serves one, the CLI works on the other.

Both start as copies of one home, so a command run through the daemon and on the twin must
print the same and exit alike (:func:`same`); a write runs on both and keeps them alike.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from blobrep.service import SyntheticImage
from tests.cli.helpers import assert_one_line_error, blobrep
from tests.daemon.conftest import Daemon, ok, start, stop

GALLERY = "gal"
DEFINITION = ("-r", GALLERY, "-i", "img")
PRINCIPALS = ("admin", "reader", "nobody")


@dataclass(frozen=True)
class Twins:
    """A daemon on one home, and the directory of its twin home worked on directly."""

    daemon: Daemon
    local: Path
    image: Path


def prepare_twins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twins]:
    """Twin homes, the daemon running on one (a module fixture's body).

    Gallery ``gal`` (description, home westcentralus) with definition ``img`` and version
    1.0.0 in westcentralus and eastus2; ``reader`` (Reader on the gallery, member of the group
    ``team``) and ``nobody`` (no role); a token for each and for ``admin``."""
    base = tmp_path_factory.mktemp("remote")
    served, local = base / "served", base / "local"
    served.mkdir()
    image = base / "disk.raw"
    with open(image, "wb") as out:
        for block in SyntheticImage(2 * 1024 * 1024, seed=21).blocks():
            out.write(block)
    ok(served, "sig", "create", "-r", GALLERY, "--location", "westcentralus", "--description", "images")
    fields = ("--publisher", "p", "--offer", "o", "--sku", "s", "--os-type", "Linux")
    ok(served, "sig", "image-definition", "create", *DEFINITION, *fields)
    targets = ("--target-regions", "westcentralus", "eastus2")
    ok(served, "sig", "image-version", "create", *DEFINITION, "-e", "1.0.0", "--source", image, *targets)
    for name, kind in (("reader", "user"), ("nobody", "user"), ("team", "group")):
        ok(served, "principal", "create", "--name", name, "--type", kind)
    ok(served, "group", "member", "add", "-g", "team", "-m", "reader")
    scope = ("--scope", f"/galleries/{GALLERY}")
    ok(served, "role", "assignment", "create", "--assignee", "reader", "--role", "Reader", *scope)
    tokens = {
        name: json.loads(ok(served, "token", "create", "--principal", name))["token"] for name in PRINCIPALS
    }
    shutil.copytree(served, local)
    url, process = start(served, served / ".blobrep")
    try:
        yield Twins(Daemon(url, served / ".blobrep", served, tokens, process), local, image)
    finally:
        if process.poll() is None:
            code, log = stop(process)
            assert code == 0, log


def remote(
    twins: Twins, *args: str | Path, principal: str = "admin", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``blobrep --endpoint URL ARGS`` as ``principal`` (its token in ``$BLOBREP_TOKEN``)."""
    token = {"BLOBREP_TOKEN": twins.daemon.tokens[principal]}
    return blobrep("--endpoint", twins.daemon.url, *args, cwd=twins.daemon.cwd, env={**token, **(env or {})})


def local(twins: Twins, *args: str | Path, principal: str = "admin") -> subprocess.CompletedProcess[str]:
    """``blobrep ARGS`` on the twin home as ``principal``."""
    return blobrep(*args, cwd=twins.local, env=None if principal == "admin" else {"BLOBREP_AS": principal})


def comparable(stdout: str) -> str:
    """``stdout`` without what depends on the moment a command ran: the published date, and
    the date a retention policy acted on a version."""
    return re.sub(r'"(publishedDate|date)": "[^"]*"', r'"\1": "..."', stdout)


def both(
    twins: Twins, *args: str | Path, principal: str = "admin"
) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """Run ``args`` through the daemon and on the twin home at the same time (they share
    nothing); the remote run and the local one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        there = pool.submit(remote, twins, *args, principal=principal)
        here = local(twins, *args, principal=principal)
        return there.result(), here


def same(twins: Twins, *args: str | Path, principal: str = "admin") -> subprocess.CompletedProcess[str]:
    """Run ``args`` both ways; they must print and exit alike. The remote run."""
    there, here = both(twins, *args, principal=principal)
    assert "Traceback" not in there.stderr, there.stderr
    assert (there.returncode, there.stderr) == (here.returncode, here.stderr)
    assert comparable(there.stdout) == comparable(here.stdout)
    return there


def same_failure(twins: Twins, *args: str, code: int, principal: str = "admin") -> str:
    """Run ``args`` both ways; both must fail with ``code`` and the same one line. The line."""
    result = same(twins, *args, principal=principal)
    return assert_one_line_error(result, code)
