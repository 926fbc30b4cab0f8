"""obstore's errors translated into blobrep's, at the object-store boundary.

obstore raises its own classes for the cases it recognises (a missing object as
``FileNotFoundError``, a create-only conflict, a failed precondition, refused credentials) and
a ``GenericError`` for everything else, whose text carries the HTTP status, the service's
error code and, for a request that never got an answer, the connection error. Listing
requests report even a 403 or a missing bucket as ``GenericError``. So the class decides
first and the text second: the status (``status code: 403``), the service's code
(``<Code>NoSuchBucket</Code>``) and the connection error (``ConnectionRefused``,
``dns error``, a timeout).

Messages are built here from the store's name, its URL, the endpoint and a reason, never by
passing obstore's text along whole: that text can hold a request URL, and a SAS token rides
in one. What is quoted is masked first: every secret the store was configured with, from its
config or the environment, and any URL signature.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, NoReturn

import obstore.exceptions as obstore_errors

from blobrep.errors import (
    AlreadyExistsError,
    BlobrepError,
    InvalidParameterError,
    NotFoundError,
    PreconditionError,
    StorageAccessDeniedError,
    StorageError,
    StorageMissingBucketError,
    StorageUnreachableError,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from blobrep.storage.object_url import ObjectUrl

CAUGHT = (obstore_errors.BaseError, OSError, ValueError)
"""What an obstore call raises for a failed request or a bad setting (a panic is no error)."""

_STATUS_RE = re.compile(r"status code: (\d{3})")
_CODE_RE = re.compile(r"<Code>([A-Za-z0-9.]+)</Code>")
_ENDPOINT_RE = re.compile(r"Error performing [A-Z]+ (https?://[^/\s,]+)")
_RETRIES_RE = re.compile(r"after (\d+) retries")
_DNS_DETAIL_RE = re.compile(r'error: "([^"]{1,200})"')
_SIGNATURE_RE = re.compile(r"([?&](?:sig|X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token)=)[^&\s\"',]+")
_MISSING_BUCKET_CODES = frozenset({"NoSuchBucket", "ContainerNotFound"})

_CREDENTIALS_HINT = {
    "s3": "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or access_key_id and secret_access_key"
    " in the store's config",
    "azure": "AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY (or AZURE_STORAGE_SAS_TOKEN),"
    " or account_name and account_key in the store's config",
}
_ALLOW_HTTP = {"s3": "AWS_ALLOW_HTTP=true", "azure": "AZURE_ALLOW_HTTP=true"}
_BUCKET_NOUN = {"s3": "S3 bucket", "azure": "Azure container"}


def is_secret(setting: str) -> bool:
    """True for a setting whose value must never be shown (a key, a token, a secret)."""
    name = setting.lower()
    if name.endswith("_id"):
        return False
    return name.endswith("_key") or any(mark in name for mark in ("secret", "token", "sas", "password"))


def _unreachable_reason(text: str) -> str | None:
    """Why a request got no answer at all, from a connection error's text; None if it did."""
    if "ConnectionRefused" in text or "Connection refused" in text:
        return "connection refused"
    if "dns error" in text:
        detail = _DNS_DETAIL_RE.search(text)
        return "the host name did not resolve" + (f" ({detail.group(1)})" if detail else "")
    if "ConnectionReset" in text or "Connection reset" in text:
        return "connection reset"
    if "TimedOut" in text or "timed out" in text or "kind: Timeout" in text:
        return "timed out"
    if "kind: Connect" in text:
        return "the connection failed"
    if "error sending request" in text or "kind: Interrupted" in text:
        return "the connection broke off"
    return None


class Translator:
    """Turns obstore's exceptions into blobrep's for one store.

    Args:
        label: how messages name the store (its name, with its URL if the two differ).
        url: the store's bucket or container and prefix.
        endpoint: the configured endpoint, if any (messages prefer the one a request used).
        config: the store's obstore settings, to mask their secrets.
    """

    def __init__(self, label: str, url: ObjectUrl, endpoint: str | None, config: Mapping[str, str]) -> None:
        self.label = label
        self._url = url
        self._endpoint = endpoint
        self._config_secrets = [value for key, value in config.items() if is_secret(key)]

    def _secrets(self) -> list[str]:
        from_environment = [
            value
            for variable, value in os.environ.items()
            if variable.startswith(("AWS_", "AZURE_")) and is_secret(variable)
        ]
        return [secret for secret in self._config_secrets + from_environment if len(secret) >= 4]

    def scrub(self, text: str) -> str:
        """``text`` with every secret of this store and every URL signature masked."""
        for secret in self._secrets():
            text = text.replace(secret, "***")
        return _SIGNATURE_RE.sub(r"\1***", text)

    def summary(self, text: str) -> str:
        """The first part of an obstore message, masked and on one line (no debug dump)."""
        head = self.scrub(text).split("\n\nDebug source", 1)[0]
        line = " ".join(head.split())
        return line if len(line) <= 400 else line[:397] + "..."

    def throw(self, error: BlobrepError, exc: BaseException) -> NoReturn:
        """Raise ``error`` from ``exc``, unless ``exc``'s text held a secret."""
        if self.scrub(str(exc)) != str(exc):
            raise error from None
        raise error from exc

    def configuration(self, exc: BaseException) -> InvalidParameterError:
        """The error for settings obstore refused when the store was built."""
        return InvalidParameterError(f"cannot set up {self.label}: {self.summary(str(exc))}")

    def translate(self, exc: BaseException, action: str, key: str) -> BlobrepError:
        """The blobrep error for ``exc``, raised while ``action`` (reading, writing...) ``key``."""
        text = str(exc)
        status_match, code_match = _STATUS_RE.search(text), _CODE_RE.search(text)
        status = int(status_match.group(1)) if status_match else None
        code = code_match.group(1) if code_match else None
        endpoint_match = _ENDPOINT_RE.search(text)
        endpoint = endpoint_match.group(1) if endpoint_match else self._endpoint or "its default endpoint"
        kind = self._url.kind
        if code in _MISSING_BUCKET_CODES:
            return StorageMissingBucketError(
                f"{_BUCKET_NOUN[kind]} {self._url.bucket!r} does not exist at {endpoint} ({self.label},"
                f" {action} {key}): create it, or correct the store's URL"
            )
        if isinstance(exc, FileNotFoundError) or status == 404:
            return NotFoundError(f"{key} not found in {self.label}")
        if isinstance(exc, obstore_errors.AlreadyExistsError):
            return AlreadyExistsError(f"{key} already exists in {self.label}")
        if isinstance(exc, obstore_errors.PreconditionError) or status == 412:
            return PreconditionError(
                f"{key} in {self.label} is not the version the write expected (another writer"
                " changed or removed it first): read it again and decide anew"
            )
        if isinstance(exc, (obstore_errors.PermissionDeniedError, obstore_errors.UnauthenticatedError)) or (
            status in (401, 403)
        ):
            said = f", the server said {code}" if code else ""
            return StorageAccessDeniedError(
                f"access denied to {self.label} ({action} {key}{said}): check the credentials"
                f" ({_CREDENTIALS_HINT[kind]})"
            )
        if status is None:
            reason = _unreachable_reason(text)
            if reason is not None:
                retries = _RETRIES_RE.search(text)
                tried = f" after {retries.group(1)} retries" if retries else ""
                return StorageUnreachableError(
                    f"cannot reach {self.label} at {endpoint}: {reason}{tried} ({action} {key})"
                )
            if "builder error" in text and endpoint.startswith("http://"):
                return StorageError(
                    f"{self.label}: the endpoint {endpoint} is plain http, which is refused unless"
                    f" allowed: set {_ALLOW_HTTP[kind]}, or allow_http in the store's config"
                )
        return StorageError(f"{self.label}: {action} {key} failed: {self.summary(text)}")
