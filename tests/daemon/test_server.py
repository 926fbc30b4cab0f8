"""The server's own failures: a home that cannot be opened, background work that dies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from starlette.applications import Starlette

from blobrep.daemon import reconcile
from blobrep.daemon.server import serve
from blobrep.errors import StorageError
from tests.cli.helpers import blobrep
from tests.daemon.conftest import free_port


def test_a_home_that_cannot_be_opened_is_one_line_and_nothing_listens(tmp_path: Path) -> None:
    home = tmp_path / ".blobrep"
    home.mkdir()
    (home / "catalog.db").write_bytes(b"not a catalog")
    result = blobrep("--home", home, "serve", "--port", str(free_port()), cwd=tmp_path, timeout=30)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "is not a blobrep catalog" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.anyio
async def test_a_bug_in_background_work_stops_the_server_and_fails_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    @asynccontextmanager
    async def broken_loop(app: Starlette, interval: float | None) -> AsyncIterator[None]:
        async def fail_soon() -> None:
            await anyio.sleep(0.2)
            raise RuntimeError("the loop broke")

        async with anyio.create_task_group() as group:
            group.start_soon(fail_soon)
            yield

    monkeypatch.setattr(reconcile, "running", broken_loop)
    with anyio.fail_after(30), pytest.raises(BaseException) as raised:
        await serve(tmp_path / ".blobrep", host="127.0.0.1", port=free_port(), shutdown_grace=1)
    assert "the loop broke" in repr(raised.value), "serve must fail with the background work's error"
    assert not isinstance(raised.value, StorageError)
