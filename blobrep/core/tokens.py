"""Bearer tokens: their format, the hash the catalog keeps, their lifetime, and the verdict on
one that a caller presents. Pure: random bytes and the current time come in as arguments.

A token reads ``brp_`` + its id + ``_`` + its secret, 64 characters in all::

    brp_tok_0123456789ab_q2Xw...43 url-safe base64 characters...

* ``brp_`` makes a token recognisable wherever it leaks: ``grep`` finds it, and a secret
  scanner can match the whole token with one pattern (:data:`TOKEN_PATTERN`).
* The id (``tok_`` + 12 hex digits, 48 random bits) is public: listings show it, ``token
  revoke`` takes it, logs may print it. The catalog finds a token by its id, so no query ever
  searches by secret, and the secret is compared in exactly one place.
* The secret is 32 random bytes (256 bits), unpadded url-safe base64. Only its SHA-256 is
  kept. A fast unsalted hash is enough because the secret is random: there is no dictionary
  to try and 2**256 values to brute-force; salts and slow hashes protect passwords people
  choose, which this is not. The hash is compared with :func:`hmac.compare_digest`, so the
  time taken does not tell how much of a guess was right.

Only the canonical spelling of a secret is accepted (the one that encoding its bytes gives):
the last base64 character carries two spare bits, and a token with them set, though it
decodes to the same bytes, is not the token that was issued.

What a refusal says (:class:`~blobrep.errors.UnauthenticatedError`; never the token, never
the secret):

* *malformed*: the text is not shaped like a token at all;
* *invalid*: no token has that id, or one has and the secret is wrong. One message for both,
  so a guessed or altered token does not tell whether its id exists;
* *revoked* / *expired*: said only to whoever holds the right secret, with the id and when.

A token always expires: :data:`MIN_LIFETIME` to :data:`MAX_LIFETIME` after it is made,
:data:`DEFAULT_LIFETIME` unless asked otherwise. It works while ``now < expires``.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from blobrep.errors import InvalidParameterError, UnauthenticatedError

#: What every token starts with.
TOKEN_PREFIX: Final = "brp_"
#: What every token id starts with.
ID_PREFIX: Final = "tok_"
#: Random bytes in a token id (12 hex digits) and in a secret (256 bits).
ID_BYTES: Final = 6
SECRET_BYTES: Final = 32

_SECRET_CHARS: Final = 43  # ceil(32 * 8 / 6): unpadded base64 of 32 bytes
_ID_RE: Final = re.compile(rf"{ID_PREFIX}[0-9a-f]{{{2 * ID_BYTES}}}")
_TOKEN_RE: Final = re.compile(
    rf"{TOKEN_PREFIX}({ID_PREFIX}[0-9a-f]{{{2 * ID_BYTES}}})_([A-Za-z0-9_-]{{{_SECRET_CHARS}}})"
)
TOKEN_LENGTH: Final = len(TOKEN_PREFIX) + len(ID_PREFIX) + 2 * ID_BYTES + 1 + _SECRET_CHARS

#: A regular expression that matches a whole token and nothing shorter, for secret scanners.
TOKEN_PATTERN: Final = r"\bbrp_tok_[0-9a-f]{12}_[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])"

#: Seconds a token lives: at least a second, at most ten years, thirty days unless asked.
MIN_LIFETIME: Final = 1.0
MAX_LIFETIME: Final = 3650 * 86400.0
DEFAULT_LIFETIME: Final = 30 * 86400.0

#: What an unknown id's secret is compared with, so that an unknown id costs the same
#: hashing and comparison as a wrong secret.
_NO_HASH: Final = "0" * 64

_SHAPE: Final = (
    f"a blobrep token is {TOKEN_PREFIX}{ID_PREFIX}, 12 hex digits, '_' and {_SECRET_CHARS}"
    " url-safe base64 characters, as 'blobrep token create' prints it"
)
_ID_SHAPE: Final = f"a token id is {ID_PREFIX} and 12 hex digits, as 'blobrep token list' shows it"


class TokenState(enum.StrEnum):
    ACTIVE = "Active"
    EXPIRED = "Expired"
    REVOKED = "Revoked"


@dataclass(frozen=True, slots=True)
class Token:
    """What is known about a token apart from its secret: what listings show.

    Times are aware datetimes in UTC.
    """

    id: str
    principal: str
    created: datetime
    expires: datetime
    revoked: datetime | None = None

    def state(self, now: datetime) -> TokenState:
        """Revoked if it was revoked (at any time), else expired from :attr:`expires` on."""
        if self.revoked is not None:
            return TokenState.REVOKED
        if _utc(now, "now") >= self.expires:
            return TokenState.EXPIRED
        return TokenState.ACTIVE


@dataclass(frozen=True, slots=True)
class StoredToken:
    """A token as the catalog keeps it: its public part and the SHA-256 (hex) of its secret."""

    token: Token
    secret_sha256: str


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token just made: the bearer text, to be shown once, and what the catalog keeps."""

    text: str = field(repr=False)
    stored: StoredToken

    @property
    def token(self) -> Token:
        return self.stored.token


@dataclass(frozen=True, slots=True)
class PresentedToken:
    """A token text taken apart: the id to look up and the secret to check."""

    id: str
    secret: bytes = field(repr=False)


def _utc(value: datetime, what: str) -> datetime:
    if value.utcoffset() is None:
        raise InvalidParameterError(f"{what} {value.isoformat()} has no time zone; give an aware datetime")
    return value.astimezone(UTC)


def _encode(secret: bytes) -> str:
    return base64.urlsafe_b64encode(secret).decode("ascii").rstrip("=")


def format_token_id(random: bytes) -> str:
    """The token id made of ``random`` (:data:`ID_BYTES` bytes from a secure source)."""
    if len(random) != ID_BYTES:
        raise InvalidParameterError(f"a token id takes {ID_BYTES} random bytes, not {len(random)}")
    return ID_PREFIX + random.hex()


def format_token(token_id: str, secret: bytes) -> str:
    """The bearer text of the token ``token_id`` with ``secret`` (:data:`SECRET_BYTES` bytes)."""
    if _ID_RE.fullmatch(token_id) is None:
        raise InvalidParameterError(f"invalid token id {token_id!r}: {_ID_SHAPE}")
    if len(secret) != SECRET_BYTES:
        raise InvalidParameterError(f"a token secret is {SECRET_BYTES} bytes, not {len(secret)}")
    return f"{TOKEN_PREFIX}{token_id}_{_encode(secret)}"


def hash_secret(secret: bytes) -> str:
    """The SHA-256 of ``secret`` in lower-case hex: all the catalog ever keeps of it."""
    return hashlib.sha256(secret).hexdigest()


def lifetime_error(seconds: float) -> str | None:
    """Why ``seconds`` cannot be a token's lifetime, or None if it can."""
    if not math.isfinite(seconds) or not MIN_LIFETIME <= seconds <= MAX_LIFETIME:
        return (
            f"a token lives from {MIN_LIFETIME:g} second to {MAX_LIFETIME / 86400:g} days, not"
            f" {seconds!r} seconds; every token expires, so give a lifetime such as 30d"
        )
    return None


def expiry(now: datetime, lifetime: float) -> datetime:
    """When a token made at ``now`` to live ``lifetime`` seconds expires: UTC, whole seconds
    (as listings show it), rounded down.

    Raises:
        InvalidParameterError: ``lifetime`` is not a finite number of seconds from
            :data:`MIN_LIFETIME` to :data:`MAX_LIFETIME` (zero, negative, NaN, infinite, more
            than ten years), or ``now`` has no time zone.
    """
    problem = lifetime_error(lifetime)
    if problem is not None:
        raise InvalidParameterError(problem)
    return (_utc(now, "now") + timedelta(seconds=lifetime)).replace(microsecond=0)


def issue(
    principal: str, token_id: str, secret: bytes, *, now: datetime, lifetime: float = DEFAULT_LIFETIME
) -> IssuedToken:
    """A new token of ``principal``, made at ``now``, from the caller's random ``token_id`` and
    ``secret``.

    Raises:
        InvalidParameterError: a wrong-sized secret, a malformed id, or a lifetime out of range
            (see :func:`expiry`).
    """
    text = format_token(token_id, secret)
    created = _utc(now, "now")
    token = Token(token_id, principal, created, expiry(created, lifetime))
    return IssuedToken(text, StoredToken(token, hash_secret(secret)))


def parse_token(text: str) -> PresentedToken:
    """The id and secret of the bearer token ``text`` (surrounding white space ignored).

    Raises:
        UnauthenticatedError: ``text`` is not a token's canonical spelling ("malformed").
    """
    candidate = text.strip()
    match = _TOKEN_RE.fullmatch(candidate) if len(candidate) == TOKEN_LENGTH else None
    if match is None:
        raise UnauthenticatedError(f"malformed bearer token: {_SHAPE}")
    token_id, encoded = match.groups()
    secret = base64.urlsafe_b64decode(encoded + "=")  # the pattern admitted only its alphabet
    if _encode(secret) != encoded:  # spare bits set: not the spelling that was issued
        raise UnauthenticatedError(f"malformed bearer token: {_SHAPE}")
    return PresentedToken(token_id, secret)


def parse_token_id(text: str) -> str:
    """The token id ``text`` names: an id (``tok_...``) or a whole token (one found leaked, say).

    Raises:
        InvalidParameterError: ``text`` is neither (the message does not repeat it, in case it
            is a token with a typo: a secret all the same).
    """
    candidate = text.strip()
    if _ID_RE.fullmatch(candidate) is not None:
        return candidate
    try:
        return parse_token(candidate).id
    except UnauthenticatedError:
        raise InvalidParameterError(f"not a token id: {_ID_SHAPE}") from None


def verify(presented: PresentedToken, stored: StoredToken | None, now: datetime) -> str:
    """The principal that ``presented`` authenticates at ``now``, given what the catalog holds
    under its id (None: nothing).

    The secret is checked first, with a comparison that takes the same time however much of
    it matches, and against a dummy hash when the id is unknown; only then are revocation
    and expiry told, to the holder of the right secret.

    Raises:
        UnauthenticatedError: "invalid" (unknown id or wrong secret), revoked, or expired.
        InvalidParameterError: ``now`` has no time zone.
    """
    when = _utc(now, "now")
    expected = _NO_HASH if stored is None else stored.secret_sha256
    matches = hmac.compare_digest(hash_secret(presented.secret), expected)
    if stored is None or not matches or stored.token.id != presented.id:
        raise UnauthenticatedError(
            f"invalid token {presented.id}: no token has that id, or its secret is not this one;"
            " make a new token with 'blobrep token create'"
        )
    token = stored.token
    state = token.state(when)
    if state is TokenState.REVOKED:
        assert token.revoked is not None
        raise UnauthenticatedError(
            f"token {token.id} was revoked at {_show(token.revoked)}; make a new one with"
            f" 'blobrep token create --principal {token.principal}'"
        )
    if state is TokenState.EXPIRED:
        raise UnauthenticatedError(
            f"token {token.id} expired at {_show(token.expires)}; make a new one with"
            f" 'blobrep token create --principal {token.principal}'"
        )
    return token.principal


def _show(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
