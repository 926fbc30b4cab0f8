"""One connection to a daemon: authenticated requests, JSON answers, paging, errors translated.

Every request carries ``Authorization: Bearer <token>``. A failure answer becomes the error
the service would have raised (:mod:`blobrep.client.errors`); a transport failure (nothing
listening, a connection reset, a timeout) becomes one :class:`EndpointError` naming the
endpoint and what happened, so no face ever sees an ``httpx2`` exception. The token is never
part of a message.

The HTTP transport is a seam: tests hand in ``httpx2.MockTransport`` to answer requests
without a server.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

import httpx2

from blobrep import __version__
from blobrep.client.errors import EndpointError, error_from_body
from blobrep.errors import UnauthenticatedError

if TYPE_CHECKING:
    from collections.abc import AsyncIterable

JSON = dict[str, Any]

#: The variable that holds the token when ``--token`` is not given.
TOKEN_VARIABLE: Final = "BLOBREP_TOKEN"

#: Seconds to connect, and to wait for any answer or any piece of one. An upload's answer
#: comes once its disk is published, which takes as long as the last window of the pipeline:
#: the read timeout is the bound on that too.
CONNECT_TIMEOUT: Final = 10.0
READ_TIMEOUT: Final = 300.0

#: The most pages a listing follows: a daemon whose ``nextLink`` never ends is broken.
MAX_PAGES: Final = 100_000


def check_token(token: str | None) -> str:
    """``token`` if it can be sent as a bearer token.

    Raises:
        UnauthenticatedError: there is none, or it holds what no token holds (a space, a
            control character); the message says how to get one and never repeats it.
    """
    if token is None or not token.strip():
        raise UnauthenticatedError(
            f"no token for the daemon: give --token or set {TOKEN_VARIABLE} (an Owner makes one on the"
            " daemon's home with 'blobrep token create --principal NAME')"
        )
    if not token.isascii() or not token.isprintable() or " " in token:
        raise UnauthenticatedError(
            "the token given is not a bearer token (it holds spaces, control or non-ASCII characters):"
            f" give the 'token' value that 'blobrep token create' printed, in --token or {TOKEN_VARIABLE}"
        )
    return token


class Connection:
    """Requests to the daemon at ``endpoint`` as the principal of ``token``.

    Use as ``async with Connection(endpoint, token) as connection:``.
    """

    def __init__(
        self, endpoint: str, token: str, *, transport: httpx2.AsyncBaseTransport | None = None
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._client = httpx2.AsyncClient(
            base_url=self.endpoint,
            headers={"Authorization": f"Bearer {token}", "User-Agent": f"blobrep/{__version__}"},
            timeout=httpx2.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
            transport=transport,
            follow_redirects=False,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._client.aclose()

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: JSON | None = None,
        content: AsyncIterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx2.Response:
        """The answer to ``method path``, read whole; a failure answer is raised as its error.

        Raises:
            BlobrepError: the error the daemon answered with (see :mod:`blobrep.client.errors`).
            EndpointError: the daemon could not be reached or broke off.
        """
        request = self._client.build_request(
            method, self._own(path), params=params, json=body, content=content, headers=headers
        )
        with self._translated(request):
            response = await self._client.send(request)
        self._raise_for(response)
        return response

    async def document(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: JSON | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> JSON:
        """The JSON object the daemon answers to ``method path``.

        Raises:
            EndpointError: the answer is not a JSON object.
        """
        response = await self.send(method, path, params=params, body=body, headers=headers)
        return self.parse(response)

    async def listing(self, path: str, *, params: Mapping[str, str] | None = None) -> list[JSON]:
        """Every item of the list at ``path``, following ``nextLink`` page after page."""
        items: list[JSON] = []
        page = await self.document("GET", path, params=params)
        for _ in range(MAX_PAGES):
            value, next_link = page.get("value"), page.get("nextLink")
            if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
                raise EndpointError(f"GET {self.endpoint}{path} answered a list without a 'value' array")
            items.extend(value)
            if next_link is None:
                return items
            if not isinstance(next_link, str):
                raise EndpointError(f"GET {self.endpoint}{path} answered a 'nextLink' that is not a URL")
            page = await self.document("GET", next_link)
        raise EndpointError(f"GET {self.endpoint}{path} answered more than {MAX_PAGES} pages")

    @contextlib.asynccontextmanager
    async def stream(
        self, method: str, path: str, *, params: Mapping[str, str] | None = None
    ) -> AsyncIterator[httpx2.Response]:
        """The answer to ``method path`` with its body still to be read (``aiter_bytes``).

        Raises:
            BlobrepError: the error the daemon answered with.
            EndpointError: the daemon could not be reached, or broke off while the body
                was being read.
        """
        request = self._client.build_request(method, self._own(path), params=params)
        with self._translated(request):
            response = await self._client.send(request, stream=True)
            try:
                if response.is_error:
                    await response.aread()
                    self._raise_for(response)
                yield response
            finally:
                await response.aclose()

    def parse(self, response: httpx2.Response) -> JSON:
        """``response``'s body as a JSON object.

        Raises:
            EndpointError: it is not one.
        """
        try:
            document = response.json()
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise EndpointError(
                f"{response.request.method} {response.request.url} answered {response.status_code}"
                " with a body that is not a JSON object"
            )
        return document

    def _own(self, path: str) -> str | httpx2.URL:
        """``path``, or a link the daemon gave (a ``nextLink``, an operation), checked to point
        at the daemon itself: the token goes nowhere else.

        Raises:
            EndpointError: the link names another origin.
        """
        if path.startswith("/"):
            return path
        try:
            url = httpx2.URL(path)
        except httpx2.InvalidURL:
            url = None
        base = self._client.base_url
        if url is None or (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port):
            raise EndpointError(
                f"the daemon at {self.endpoint} linked to {path[:120]!r}, which is not on the daemon:"
                " the token is sent to the daemon only"
            )
        return url

    def _raise_for(self, response: httpx2.Response) -> None:
        if response.is_error:
            raise error_from_body(
                response.status_code, response.content, f"{response.request.method} {response.request.url}"
            )
        if response.is_redirect:
            raise EndpointError(
                f"{response.request.method} {response.request.url} answered {response.status_code}"
                f" (a redirect to {response.headers.get('location', 'nowhere')}): give the daemon's own"
                " address in --endpoint"
            )

    @contextlib.contextmanager
    def _translated(self, request: httpx2.Request) -> Iterator[None]:
        """Raise :class:`EndpointError` for an ``httpx2`` failure inside, from it."""
        try:
            yield
        except httpx2.ConnectError as exc:
            raise EndpointError(
                f"cannot reach the daemon at {self.endpoint}: {_reason(exc)}; is 'blobrep serve' running"
                " there, and is --endpoint its address?"
            ) from exc
        except httpx2.TimeoutException as exc:
            raise EndpointError(
                f"the daemon at {self.endpoint} did not answer {request.method} {request.url.path} in"
                f" time ({type(exc).__name__}); it may be overloaded: try again later"
            ) from exc
        except (httpx2.TransportError, httpx2.DecodingError, httpx2.TooManyRedirects) as exc:
            raise EndpointError(
                f"{request.method} {request.url} failed: {type(exc).__name__}: {_said(exc)}"
            ) from exc


def _reason(exc: BaseException) -> str:
    """Why a connection failed, in words: the system's reason where one is down the chain
    (``connection refused``), else what ``exc`` says."""
    import errno

    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.errno is not None:
            return os.strerror(seen.errno).lower() if seen.errno in errno.errorcode else _said(seen)
        seen = seen.__cause__ or seen.__context__
    return _said(exc)


def _said(exc: BaseException) -> str:
    """What ``exc`` says, on one line; its class name if it says nothing."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
