"""Bearer tokens: making, listing and revoking them, and telling who presents one.

Who may do what:

* a user or service principal may make, list and revoke its own tokens;
* making or revoking a token of another principal, or listing another's, needs Owner at
  ``/``: a token acts with every role of its principal, so handing one out is as strong as
  granting those roles;
* a group holds no tokens (it cannot act), and cannot ask for any.

A caller that may not manage access at ``/`` and names a token that is not its own is refused
in the same words whether or not that token exists, so token ids cannot be probed; an Owner
at ``/`` is told when an id names no token.

:meth:`_Tokens.authenticate` is what the daemon calls on every request. It only reads the
catalog (one lookup by id), so it needs no write lock, works on a full disk, and costs no
more than any other read of the service.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar

from blobrep.core.access import Action
from blobrep.core.definitions import format_datetime
from blobrep.core.ids import ResourceId
from blobrep.core.tokens import (
    DEFAULT_LIFETIME,
    ID_BYTES,
    SECRET_BYTES,
    IssuedToken,
    Token,
    format_token_id,
    issue,
    parse_token,
    parse_token_id,
    verify,
)
from blobrep.errors import AccessDeniedError, AlreadyExistsError, ResourceNotFoundError
from blobrep.service._base import _Base

if TYPE_CHECKING:
    from blobrep.catalog.reads import CatalogReads
    from blobrep.service.home import Home
    from blobrep.service.queries import Query

T = TypeVar("T")

#: How many fresh ids to try when one is taken (48 random bits: a second try is already rare).
_ID_ATTEMPTS: Final = 4


class _Tokens(_Base):
    async def create_token(
        self, caller: str, principal: str, *, lifetime: float = DEFAULT_LIFETIME
    ) -> IssuedToken:
        """A new bearer token of ``principal``, living ``lifetime`` seconds.

        The returned :attr:`IssuedToken.text` is the only copy of the token: the catalog keeps
        the hash of its secret.

        Raises:
            AccessDeniedError: ``principal`` is not the caller, and the caller is not Owner at ``/``.
            ResourceNotFoundError: ``principal`` does not exist (said only to such an Owner).
            InvalidParameterError: ``principal`` is a group, or ``lifetime`` is out of range
                (see :func:`blobrep.core.tokens.expiry`).
        """
        if principal == caller:
            await self._authorizer(caller)
        else:
            await self._check(caller, Action.MANAGE_ACCESS, ResourceId.home())
        for attempt in range(_ID_ATTEMPTS):
            issued = issue(
                principal,
                format_token_id(secrets.token_bytes(ID_BYTES)),
                secrets.token_bytes(SECRET_BYTES),
                now=self._now(),
                lifetime=lifetime,
            )
            try:
                await self._catalog.create_token(issued.stored)
            except AlreadyExistsError:
                if attempt + 1 == _ID_ATTEMPTS:
                    raise
                continue
            return issued
        raise AssertionError("unreachable")

    async def list_tokens(self, caller: str, *, principal: str | None = None) -> list[Token]:
        """The caller's tokens; with Owner at ``/``, every token (or ``principal``'s).

        Secrets are not part of a :class:`~blobrep.core.tokens.Token`: nothing lists them.

        Raises:
            AccessDeniedError: ``principal`` is another, and the caller is not Owner at ``/``.
            ResourceNotFoundError: ``principal`` does not exist (said only to such an Owner).
        """
        authorizer = await self._authorizer(caller)
        if principal == caller:
            return await self._catalog.list_tokens(caller)
        try:
            authorizer.check(Action.MANAGE_ACCESS, ResourceId.home())
        except AccessDeniedError:
            if principal is not None:
                raise
            return await self._catalog.list_tokens(caller)
        if principal is not None:
            await self._catalog.get_principal(principal)
        return await self._catalog.list_tokens(principal)

    async def revoke_token(self, caller: str, token: str) -> Token:
        """Revoke the token ``token`` names (its id, or the token itself) and return it.

        Revoking a revoked token changes nothing and succeeds: the revocation time stays the
        first one.

        Raises:
            InvalidParameterError: ``token`` is neither a token id nor a token.
            AccessDeniedError: it is not one of the caller's tokens (or names none), and the
                caller is not Owner at ``/``.
            ResourceNotFoundError: no token has that id (said only to such an Owner).
        """
        authorizer = await self._authorizer(caller)
        token_id = parse_token_id(token)
        found = await self._catalog.find_token(token_id)
        if found is None or found.token.principal != caller:
            try:
                authorizer.check(Action.MANAGE_ACCESS, ResourceId.home())
            except AccessDeniedError as exc:
                raise AccessDeniedError(
                    f"{caller!r} holds no token {token_id}, and revoking another principal's token"
                    f" needs Owner at /: {exc}"
                ) from None
            if found is None:
                raise ResourceNotFoundError(f"token {token_id} not found; 'blobrep token list' shows them")
        return await self._catalog.revoke_token(token_id, self._now())

    async def authenticate(self, token: str) -> str:
        """The principal whose valid, unexpired, unrevoked bearer token ``token`` is.

        The message of a refusal never holds the token; see :mod:`blobrep.core.tokens` for
        what it does say.

        Raises:
            UnauthenticatedError: ``token`` is malformed, names no token, carries the wrong
                secret, has expired or was revoked (a deleted principal's tokens are gone).
        """
        principal, _ = await self.read_as_bearer(token, _nothing)
        return principal

    async def read_as_bearer(self, token: str, query: Query[T]) -> tuple[str, T]:
        """The principal of the bearer token ``token`` and ``query`` run as it, both in one
        catalog transaction (one hop to the catalog's thread, where :meth:`authenticate`
        and :meth:`run_query` take two): what a request that only reads needs. The token is
        verified first, so a refused one runs nothing, and a token revoked a moment before is
        refused by the very transaction that would have answered.

        Raises:
            UnauthenticatedError: as :meth:`authenticate`.
            BlobrepError: whatever ``query`` raises.
        """
        presented = parse_token(token)
        now = self._now()

        def run(reads: CatalogReads) -> tuple[str, T]:
            principal = verify(presented, reads.find_token(presented.id), now)
            return principal, query(reads, self._home, principal)

        return await self._catalog.read_with(run)


def _nothing(reads: CatalogReads, home: Home, caller: str) -> None:
    """The query of a call that only authenticates."""


def token_view(token: Token, now: datetime) -> dict[str, Any]:
    """A token as listings show it at ``now``: everything but its secret."""
    return {
        "id": token.id,
        "principal": token.principal,
        "state": str(token.state(now)),
        "created": format_datetime(token.created),
        "expires": format_datetime(token.expires),
        "revoked": None if token.revoked is None else format_datetime(token.revoked),
    }


def issued_token_view(issued: IssuedToken) -> dict[str, Any]:
    """A token just made, with its text: shown once, never again."""
    return {
        "id": issued.token.id,
        "token": issued.text,
        "principal": issued.token.principal,
        "expires": format_datetime(issued.token.expires),
    }
