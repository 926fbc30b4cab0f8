"""What every route shares: the caller of a request, JSON answers, ARM errors, paging.

Every route but ``/livez``, ``/readyz`` and ``/metrics`` needs ``Authorization: Bearer
<token>`` (tokens are made with ``blobrep token create``); the principal the token belongs to
is the caller of the service call, so the same roles decide over HTTP as on the command line.
A request without a valid token gets 401 with ``WWW-Authenticate``; one whose principal lacks
the role, 403 with the message the CLI prints.

A request that only reads the catalog (the GETs of galleries, definitions, versions and a
version's disk) verifies its token in the same catalog transaction as its read
(:class:`Ask`): one hop to the catalog's thread instead of two, on the paths many clients
hit at once.

Lists page ARM's way: ``$top`` items (default 100, at most 1000) and a ``nextLink`` carrying
``$skipToken`` while more remain.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from blobrep.daemon import arm
from blobrep.daemon.bodies import PreconditionFailedError
from blobrep.errors import BlobrepError, InvalidParameterError, UnauthenticatedError

if TYPE_CHECKING:
    from starlette.requests import Request

    from blobrep.service import GalleryService
    from blobrep.service.queries import Query

T = TypeVar("T")

#: Items in a page when ``$top`` is not given, and the most a page may hold.
DEFAULT_TOP: Final = 100
MAX_TOP: Final = 1000

Handler = Callable[["Request", "GalleryService", str], Awaitable[Response]]
Endpoint = Callable[["Request"], Awaitable[Response]]
ReadHandler = Callable[["Request", "Ask"], Awaitable[Response]]


def json(document: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(document, status_code=status, headers=headers)


def failure(exc: BlobrepError) -> Response:
    """``exc`` as an ARM error response, with ``WWW-Authenticate`` or ``Retry-After`` where due."""
    status, code = arm.error_status(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, UnauthenticatedError):
        headers["WWW-Authenticate"] = 'Bearer realm="blobrep"'
    if exc.retryable:
        headers["Retry-After"] = str(arm.RETRY_AFTER_SECONDS)
    return json(arm.error_body(code, one_line(exc)), status, headers)


def one_line(exc: BaseException) -> str:
    """``exc``'s message on one line, as the CLI prints it."""
    return " ".join(str(exc).split())


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405 in ARM's error shape."""
    assert isinstance(exc, HTTPException)
    codes = {404: "NotFound", 405: "MethodNotAllowed"}
    message = (
        f"no route {request.url.path}"
        if exc.status_code == 404
        else f"{request.method} is not allowed on {request.url.path}"
    )
    body = arm.error_body(codes.get(exc.status_code, "BadRequest"), message)
    return json(body, exc.status_code, dict(exc.headers or {}))  # Allow, on a 405


def service_of(request: Request) -> GalleryService:
    service: GalleryService = request.app.state.service
    return service


def _caller_is(request: Request, principal: str) -> None:
    """Record who the request acts as, for its log line."""
    request.scope.setdefault("state", {})["principal"] = principal


def authenticated(handler: Handler) -> Endpoint:
    """``handler`` called with the service and the principal the bearer token names; every
    blobrep error becomes its ARM error response."""

    async def endpoint(request: Request) -> Response:
        service = service_of(request)
        try:
            caller = await service.authenticate(bearer(request))
            _caller_is(request, caller)
            check_if_match(request)
            return await handler(request, service, caller)
        except BlobrepError as exc:
            return failure(exc)

    return endpoint


def check_if_match(request: Request) -> None:
    """Refuse an ``If-Match`` this daemon cannot honour, rather than ignore it: its resources
    carry no entity tag (only a disk's content does), so no tag can match one, and a client
    relying on the header for optimistic concurrency must not see its write go through.
    ``If-Match: *`` (the resource must exist) holds for PATCH and DELETE, which change only
    what exists; a PUT that must not create is a PATCH.

    Raises:
        PreconditionFailedError: the header names tags, or is ``*`` on a PUT or POST.
    """
    given = request.headers.get("if-match")
    if given is None or request.method in ("GET", "HEAD"):
        return
    if given.strip() == "*" and request.method in ("PATCH", "DELETE"):
        return
    if given.strip() == "*":
        raise PreconditionFailedError(
            f"If-Match: * on a {request.method} is not honoured here: send a PATCH to change a"
            " resource only if it exists"
        )
    raise PreconditionFailedError(
        f"If-Match {given[:80]!r} cannot match: the resources here carry no entity tag; leave out"
        " If-Match (or send If-Match: * on a PATCH or DELETE)"
    )


class Ask:
    """The catalog read of a request that only reads, run as the principal of its bearer token,
    the token verified in the same transaction (see the module docstring).

    A handler asks before anything else can fail, so that a request with a bad token is a
    401 whatever else is wrong with it; it may ask more than once (each ask verifies again).
    """

    __slots__ = ("_request", "_token", "service")

    def __init__(self, request: Request, service: GalleryService, token: str) -> None:
        self._request = request
        self._token = token
        self.service = service

    async def __call__(self, query: Query[T]) -> T:
        """``query(reads, home, principal)`` once the token is verified, in one transaction.

        Raises:
            UnauthenticatedError: the token is not valid (nothing was read).
            BlobrepError: what ``query`` raises.
        """
        principal, answer = await self.service.read_as_bearer(self._token, query)
        _caller_is(self._request, principal)
        return answer


class Reading:
    """A handler of a request that only reads (see :class:`Ask`), as a route's endpoint; every
    blobrep error becomes its ARM error response."""

    __slots__ = ("_handler",)

    def __init__(self, handler: ReadHandler) -> None:
        self._handler = handler

    async def __call__(self, request: Request) -> Response:
        try:
            return await self._handler(request, Ask(request, service_of(request), bearer(request)))
        except BlobrepError as exc:
            return failure(exc)


def resource(path: str, **methods: Handler | Reading) -> Route:
    """One route for a resource's methods (``get``, ``put``, ``patch``, ``delete``, ``head``,
    ``post``), each authenticated: a :class:`Reading` verifies its token with its read, any
    other handler is given the caller once its token is verified."""
    endpoints: dict[str, Endpoint] = {
        method.upper(): handler if isinstance(handler, Reading) else authenticated(handler)
        for method, handler in methods.items()
    }
    if "GET" in endpoints:
        # HEAD is GET without the body (the server drops it), unless the resource has its own.
        endpoints.setdefault("HEAD", endpoints["GET"])

    async def dispatch(request: Request) -> Response:
        return await endpoints[request.method](request)

    return Route(path, dispatch, methods=list(endpoints))


def create_only(request: Request) -> bool:
    """True if a PUT asks to create and never to update (``If-None-Match: *``): a resource
    that exists is then a 409 ResourceAlreadyExists, and nothing of it changes."""
    return request.headers.get("if-none-match", "").strip() == "*"


def bearer(request: Request) -> str:
    """The token of the request's ``Authorization: Bearer`` header."""
    header = request.headers.get("authorization")
    if header is None:
        raise UnauthenticatedError("no Authorization header: send 'Authorization: Bearer <token>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthenticatedError("the Authorization header is not 'Bearer <token>'")
    return token.strip()


def page(request: Request, items: Sequence[arm.JSON]) -> Response:
    """One page of ``items`` after ``$skipToken``, ``$top`` long, with the next page's link."""
    top = whole_parameter(request, "$top", DEFAULT_TOP, 1, MAX_TOP)
    start = whole_parameter(request, "$skipToken", 0, 0, len(items))
    end = start + top
    next_link = None
    if end < len(items):
        query = {key: value for key, value in request.query_params.items() if key != "$skipToken"}
        query["$skipToken"] = str(end)
        next_link = str(request.url.replace_query_params(**query))
    return json(arm.listing(list(items[start:end]), next_link))


def whole_parameter(request: Request, name: str, default: int, low: int, high: int) -> int:
    """The query parameter ``name`` as a whole number from ``low`` to ``high``."""
    text = request.query_params.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise InvalidParameterError(f"{name}={text!r} is not a whole number from {low} to {high}")
    return int(text)


def expanded(request: Request) -> bool:
    """True if ``$expand=ReplicationStatus`` was asked for."""
    expand = request.query_params.get("$expand")
    if expand is None:
        return False
    if expand.lower() != "replicationstatus":
        raise InvalidParameterError(
            f"$expand={expand!r} is not known: the one expansion is ReplicationStatus"
        )
    return True
