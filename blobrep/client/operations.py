"""Waiting for a long-running operation the ARM way: poll what ``Azure-AsyncOperation`` names.

A version write answers before its work is done (the disk replicated to every target region,
replicas dropped) and names an operation resource; its ``status`` stays ``InProgress`` until
the work is over, then says ``Succeeded``, ``Failed`` or ``Canceled``.

The first polls come sooner than the daemon's ``Retry-After`` (whole seconds) asks: most
operations on a version of a few gigabytes or less are over within a second or two, and a
command waits for them while someone watches. From :data:`FIRST_POLLS` on, the polls are
spaced as the daemon asks, within :data:`MAX_POLL`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import anyio

from blobrep.client.errors import EndpointError, error_for

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    import httpx2

    from blobrep.client.connection import Connection
    from blobrep.errors import BlobrepError

#: Seconds before each of the first polls, and the most between two later ones.
FIRST_POLLS: Final = (0.1, 0.25, 0.5, 1.0)
MAX_POLL: Final = 10.0
#: The statuses that end an operation.
FINAL: Final = frozenset({"Succeeded", "Failed", "Canceled"})


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an operation ended: its status, and its error if it did not succeed."""

    status: str
    code: str | None = None
    message: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "Succeeded"

    def error(self) -> BlobrepError:
        """The error the operation ended with, as the CLI reports it (a failed write is a
        conflict with the state it met, like a local one)."""
        return error_for(409, self.code or self.status, self.message or f"the operation ended {self.status}")


def operation_url(response: httpx2.Response) -> str:
    """The operation a write's answer names in ``Azure-AsyncOperation``.

    Raises:
        EndpointError: the answer names none.
    """
    url = response.headers.get("azure-asyncoperation")
    if not url:
        raise EndpointError(
            f"{response.request.method} {response.request.url} answered {response.status_code} without"
            " the Azure-AsyncOperation header that names its operation"
        )
    return url


def poll_delay(response: httpx2.Response, polls: int) -> float:
    """Seconds to wait before poll number ``polls`` + 1 (see the module's docstring)."""
    text = response.headers.get("retry-after", "")
    asked = float(text) if text.isascii() and text.isdigit() else 1.0
    if polls < len(FIRST_POLLS):
        return min(asked, FIRST_POLLS[polls]) if asked > 0 else FIRST_POLLS[polls]
    return min(MAX_POLL, max(FIRST_POLLS[0], asked))


async def wait_for(
    connection: Connection, url: str, *, between: Callable[[], Awaitable[None]] | None = None
) -> Outcome:
    """Poll the operation at ``url`` until it is over; ``between`` runs after each poll that
    found it running (to report progress)."""
    polls = 0
    while True:
        response = await connection.send("GET", url)
        document = connection.parse(response)
        status = document.get("status")
        if not isinstance(status, str):
            raise EndpointError(f"GET {url} answered an operation without a status")
        if status in FINAL:
            error = document.get("error")
            if isinstance(error, dict):
                code, message = error.get("code"), error.get("message")
                return Outcome(
                    status,
                    code if isinstance(code, str) else None,
                    message if isinstance(message, str) else None,
                )
            return Outcome(status)
        if between is not None:
            await between()
        await anyio.sleep(poll_delay(response, polls))
        polls += 1
