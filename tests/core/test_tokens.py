"""Bearer tokens: the format, what is kept of the secret, lifetimes, and the verdict on a token."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from blobrep.core.tokens import (
    DEFAULT_LIFETIME,
    MAX_LIFETIME,
    TOKEN_LENGTH,
    TOKEN_PATTERN,
    IssuedToken,
    StoredToken,
    TokenState,
    expiry,
    format_token,
    format_token_id,
    hash_secret,
    issue,
    parse_token,
    parse_token_id,
    verify,
)
from blobrep.errors import InvalidParameterError, UnauthenticatedError

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
SECRET = bytes(range(32))
ID = "tok_0123456789ab"
TOKEN_RE = re.compile(r"brp_tok_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")

secrets_ = st.binary(min_size=32, max_size=32)
ids = st.binary(min_size=6, max_size=6).map(format_token_id)


def issued(principal: str = "robot", lifetime: float = DEFAULT_LIFETIME) -> IssuedToken:
    return issue(principal, ID, SECRET, now=NOW, lifetime=lifetime)


def authenticate(text: str, stored: StoredToken | None, now: datetime = NOW) -> str:
    return verify(parse_token(text), stored, now)


# --- format -------------------------------------------------------------------------------------


def test_a_token_is_recognisable_64_characters_with_its_id_inside() -> None:
    token = issued()
    assert token.text == f"brp_{ID}_{base64.urlsafe_b64encode(SECRET).decode().rstrip('=')}"
    assert len(token.text) == TOKEN_LENGTH == 64
    assert TOKEN_RE.fullmatch(token.text)
    assert token.token.id == ID
    assert re.search(TOKEN_PATTERN, f"export BLOBREP_TOKEN={token.text}\n").group(0) == token.text  # type: ignore[union-attr]
    assert re.search(TOKEN_PATTERN, f"x{token.text}") is None, "the pattern matches whole tokens only"
    assert re.search(TOKEN_PATTERN, token.text + "A") is None


@given(ids, secrets_)
def test_a_token_round_trips_through_its_text(token_id: str, secret: bytes) -> None:
    text = format_token(token_id, secret)
    assert TOKEN_RE.fullmatch(text)
    presented = parse_token(text)
    assert (presented.id, presented.secret) == (token_id, secret)
    assert parse_token(f"  {text}\n").secret == secret, "white space around it, as read from a file"
    assert parse_token_id(text) == token_id == parse_token_id(token_id)


@given(ids, secrets_)
def test_an_issued_token_authenticates_its_principal_until_it_expires(token_id: str, secret: bytes) -> None:
    token = issue("alice@contoso.com", token_id, secret, now=NOW, lifetime=3600)
    assert authenticate(token.text, token.stored) == "alice@contoso.com"
    assert authenticate(token.text, token.stored, NOW + timedelta(seconds=3599)) == "alice@contoso.com"


def test_the_secret_is_kept_only_as_its_sha256() -> None:
    token = issued()
    assert token.stored.secret_sha256 == hashlib.sha256(SECRET).hexdigest() == hash_secret(SECRET)
    secret_text = token.text[-43:]
    kept = repr(token.stored)
    assert secret_text not in kept and token.text not in kept and SECRET.hex() not in kept
    assert token.text not in repr(token), "the token's text does not show in logs of its value"
    assert SECRET.hex() not in repr(parse_token(token.text))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "brp_",
        "Bearer brp_tok_0123456789ab_" + "A" * 43,
        "brp_tok_0123456789AB_" + "A" * 43,  # upper-case hex
        "brp_tok_0123456789ab_" + "A" * 42,
        "brp_tok_0123456789ab_" + "A" * 44,
        "brp_tok_0123456789ab_" + "A" * 42 + "=",
        "brp_tok_0123456789ab-" + "A" * 43,
        "brp_tok_0123456789ab_" + "A" * 42 + "+",
        "ghp_tok_0123456789ab_" + "A" * 43,
        "brp_tok_0123456789ab_" + "A" * 42 + "B",  # spare bits set: not the canonical spelling
        "brp_tok_0123456789ab_" + "\u0410" * 43,
    ],
)
def test_what_is_not_shaped_like_a_token_is_malformed(text: str) -> None:
    with pytest.raises(UnauthenticatedError, match=r"^malformed bearer token: a blobrep token is brp_tok_"):
        parse_token(text)


def test_only_the_issued_spelling_of_the_secret_is_accepted() -> None:
    token = issued()
    last = token.text[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    same_bytes = [c for c in alphabet if c != last and alphabet.index(c) >> 2 == alphabet.index(last) >> 2]
    assert len(same_bytes) == 3
    for other in same_bytes:
        variant = token.text[:-1] + other
        assert base64.urlsafe_b64decode(variant[-43:] + "=") == SECRET
        with pytest.raises(UnauthenticatedError, match="malformed"):
            authenticate(variant, token.stored)


# --- random and altered tokens never authenticate --------------------------------------------------


@settings(max_examples=300)
@given(st.text())
def test_random_text_never_authenticates(text: str) -> None:
    token = issued()
    assume(text.strip() != token.text)
    with pytest.raises(UnauthenticatedError) as refused:
        authenticate(text, token.stored)
    assert token.text not in str(refused.value)


@settings(max_examples=300)
@given(st.from_regex(TOKEN_RE, fullmatch=True))
def test_a_well_formed_token_of_another_secret_never_authenticates(text: str) -> None:
    token = issued()
    assume(text != token.text)
    try:
        presented = parse_token(text)
    except UnauthenticatedError:
        return  # a non-canonical last character
    stored = token.stored if presented.id == ID else None  # what the catalog finds under the id
    with pytest.raises(UnauthenticatedError, match=r"^invalid token tok_[0-9a-f]{12}: no token has that id"):
        verify(presented, stored, NOW)


@settings(max_examples=300)
@given(st.integers(min_value=0, max_value=63), st.sampled_from("0123456789abcdefABCXYZ_-"))
def test_changing_one_character_of_a_token_never_authenticates(position: int, character: str) -> None:
    token = issued()
    altered = token.text[:position] + character + token.text[position + 1 :]
    assume(altered != token.text)
    with pytest.raises(UnauthenticatedError):
        authenticate(altered, token.stored)


@given(secrets_)
def test_an_unknown_id_and_a_wrong_secret_read_the_same(secret: bytes) -> None:
    token = issued()
    assume(secret != SECRET)
    wrong_secret = format_token(ID, secret)
    with pytest.raises(UnauthenticatedError) as wrong:
        authenticate(wrong_secret, token.stored)
    with pytest.raises(UnauthenticatedError) as unknown:
        authenticate(wrong_secret, None)
    assert str(wrong.value) == str(unknown.value)
    assert wrong_secret[-43:] not in str(wrong.value), "the secret is never echoed"


def test_revocation_and_expiry_are_told_only_to_the_holder_of_the_secret() -> None:
    token = issued()
    revoked = StoredToken(replace(token.token, revoked=NOW + timedelta(hours=1)), token.stored.secret_sha256)
    with pytest.raises(
        UnauthenticatedError, match=r"token tok_0123456789ab was revoked at 2030-01-01T13:00:00Z"
    ):
        authenticate(token.text, revoked, NOW + timedelta(hours=2))
    with pytest.raises(UnauthenticatedError, match=r"^invalid token"):
        authenticate(format_token(ID, bytes(32)), revoked, NOW + timedelta(hours=2))
    expired_at = NOW + timedelta(seconds=DEFAULT_LIFETIME)
    with pytest.raises(UnauthenticatedError, match=r"token tok_0123456789ab expired at 2030-01-31T12:00:00Z"):
        authenticate(token.text, token.stored, expired_at)
    with pytest.raises(UnauthenticatedError, match=r"^invalid token"):
        authenticate(format_token(ID, bytes(32)), token.stored, expired_at)


def test_a_revoked_token_stays_revoked_even_before_its_revocation_time() -> None:
    """Clocks step back: once revoked, a token never works again, whatever ``now`` says."""
    token = issued()
    revoked = StoredToken(replace(token.token, revoked=NOW + timedelta(days=1)), token.stored.secret_sha256)
    with pytest.raises(UnauthenticatedError, match="was revoked"):
        authenticate(token.text, revoked, NOW)


def test_a_stored_token_under_another_id_does_not_authenticate() -> None:
    token = issued()
    other = StoredToken(replace(token.token, id="tok_ffffffffffff"), token.stored.secret_sha256)
    with pytest.raises(UnauthenticatedError, match="invalid token"):
        authenticate(token.text, other)


# --- lifetimes and the clock ---------------------------------------------------------------------


@given(st.floats(min_value=1, max_value=MAX_LIFETIME))
def test_a_token_works_until_its_expiry_and_not_from_it(lifetime: float) -> None:
    token = issued(lifetime=lifetime)
    expires = token.token.expires
    assert expires.microsecond == 0 and expires.tzinfo is not None
    assert NOW < expires <= NOW + timedelta(seconds=lifetime)
    assert token.token.state(expires - timedelta(microseconds=1)) is TokenState.ACTIVE
    assert authenticate(token.text, token.stored, expires - timedelta(microseconds=1)) == "robot"
    assert token.token.state(expires) is TokenState.EXPIRED
    with pytest.raises(UnauthenticatedError, match="expired"):
        authenticate(token.text, token.stored, expires)


def test_the_default_lifetime_is_thirty_days() -> None:
    assert issued().token.expires == NOW + timedelta(days=30)


def test_times_in_any_zone_are_the_same_instant() -> None:
    plus_five = timezone(timedelta(hours=5))
    token = issue("robot", ID, SECRET, now=NOW.astimezone(plus_five), lifetime=60)
    assert token.token.created == NOW and token.token.created.tzinfo == UTC
    assert token.token.expires == NOW + timedelta(minutes=1)


@pytest.mark.parametrize(
    "lifetime", [0, -1, 0.5, float("nan"), float("inf"), -float("inf"), MAX_LIFETIME + 1]
)
def test_a_lifetime_out_of_range_is_refused(lifetime: float) -> None:
    with pytest.raises(InvalidParameterError, match="a token lives from 1 second to 3650 days"):
        expiry(NOW, lifetime)
    with pytest.raises(InvalidParameterError):
        issue("robot", ID, SECRET, now=NOW, lifetime=lifetime)


def test_a_naive_now_is_refused_rather_than_guessed() -> None:
    with pytest.raises(InvalidParameterError, match="no time zone"):
        expiry(datetime(2030, 1, 1), 60)
    with pytest.raises(InvalidParameterError, match="no time zone"):
        authenticate(issued().text, issued().stored, datetime(2030, 1, 1))


# --- ids ------------------------------------------------------------------------------------------


def test_ids_are_tok_and_12_hex_digits_made_of_6_random_bytes() -> None:
    assert format_token_id(bytes.fromhex("0123456789ab")) == ID
    with pytest.raises(InvalidParameterError):
        format_token_id(b"12345")
    with pytest.raises(InvalidParameterError):
        format_token(ID, b"short")
    with pytest.raises(InvalidParameterError):
        format_token("tok_XYZ", SECRET)


@pytest.mark.parametrize("text", ["", "tok_", "tok_0123456789", "TOK_0123456789ab", "0123456789ab", "brp_x"])
def test_what_is_no_token_id_is_refused_without_echoing_it(text: str) -> None:
    with pytest.raises(InvalidParameterError) as refused:
        parse_token_id(text)
    assert str(refused.value) == (
        "not a token id: a token id is tok_ and 12 hex digits, as 'blobrep token list' shows it"
    )


def test_a_mistyped_token_given_as_an_id_is_not_echoed() -> None:
    mistyped = issued().text[:-2]
    with pytest.raises(InvalidParameterError) as refused:
        parse_token_id(mistyped)
    assert mistyped[-41:] not in str(refused.value)
