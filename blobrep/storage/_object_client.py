"""Connecting an object store: the obstore client, its settings, retries and identity.

Settings. obstore reads the standard environment variables itself; these names were checked
against SeaweedFS's S3 gateway and Azurite with obstore 0.12.1:

* S3: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` (and ``AWS_SESSION_TOKEN``),
  ``AWS_REGION``; the endpoint from ``AWS_ENDPOINT_URL`` (``AWS_ENDPOINT`` and
  ``AWS_ENDPOINT_URL_S3`` work too); plain http only with ``AWS_ALLOW_HTTP=true``.
* Azure: ``AZURE_STORAGE_ACCOUNT_NAME``, ``AZURE_STORAGE_ACCOUNT_KEY`` (or a SAS token in
  ``AZURE_STORAGE_SAS_TOKEN``); the account URL from ``AZURE_STORAGE_ENDPOINT`` (or
  ``AZURE_ENDPOINT``), e.g. ``http://127.0.0.1:10000/devstoreaccount1`` for Azurite; plain
  http only with ``AZURE_ALLOW_HTTP=true`` (``AZURE_STORAGE_ALLOW_HTTP`` does nothing).

A store's ``config`` holds obstore's keys (``endpoint``, ``access_key_id``,
``aws_secret_access_key``, ``account_key``, ``allow_http``...) and overrides the environment.
Everything goes through ``config``, never through obstore's ``client_options``: passing
those replaces the client settings read from the environment, so ``AWS_ALLOW_HTTP`` would
silently stop applying.

Retries. Transient failures (5xx, throttling, dropped or refused connections) are retried
inside the client with capped exponential backoff and jitter (:data:`RETRY`): at most 4
retries, from 100 ms up to 2 s apart, none started 15 s after the first attempt. That rides
out a blip without hiding an outage; callers own the overall time, and cancelling a call (an
anyio cancel scope) drops its request and connection at once. A create-only put whose answer
was lost and that is retried can report that the key exists although it was this put that
created it: writers of create-only keys compare what is there.
"""

from __future__ import annotations

import atexit
import functools
import os
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, cast

from obstore.store import AzureStore, S3Store

from blobrep.storage._object_errors import CAUGHT, Translator

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from obstore.store import AzureConfig, RetryConfig, S3Config

    from blobrep.storage.base import Buffer, Payload
    from blobrep.storage.object_url import ObjectUrl

RETRY: RetryConfig = {
    "max_retries": 4,
    "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=2), "base": 2},
    "retry_timeout": timedelta(seconds=15),
}

MAX_OBJECT_NAME = 1024
"""Characters in an object name: S3 allows 1024 bytes of UTF-8, Azure 1024 characters."""

# (config keys, environment variables) in obstore's order of precedence.
_ENDPOINT = {
    "s3": (
        ("aws_endpoint_url_s3", "aws_endpoint", "endpoint", "aws_endpoint_url"),
        ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"),
    ),
    "azure": (
        ("azure_storage_endpoint", "azure_endpoint", "endpoint"),
        ("AZURE_STORAGE_ENDPOINT", "AZURE_ENDPOINT"),
    ),
}
_ACCOUNT = (("azure_storage_account_name", "account_name"), ("AZURE_STORAGE_ACCOUNT_NAME",))


@dataclass(frozen=True, slots=True)
class Client:
    """What a store talks through: obstore's client for its bucket or container, where that
    is (two stores with the same ``service`` can copy inside it), and its error translator."""

    backend: S3Store | AzureStore
    service: tuple[str, str, str, str | None]
    errors: Translator


def _setting(config: Mapping[str, str], keys: Sequence[str], variables: Sequence[str]) -> str | None:
    """A setting as obstore resolves it: from ``config`` first, else from the environment."""
    lowered = {name.lower(): value for name, value in config.items()}
    for key in keys:
        if lowered.get(key):
            return lowered[key]
    for variable in variables:
        if os.environ.get(variable):
            return os.environ[variable]
    return None


def connect(url: ObjectUrl, config: dict[str, str], label: str) -> Client:
    """The client for ``url`` with ``config`` over the environment; nothing is sent yet.

    Raises:
        InvalidParameterError: if obstore refuses a setting (an unknown key, a bad value).
    """
    endpoint = _setting(config, *_ENDPOINT[url.kind])
    account = _setting(config, *_ACCOUNT) if url.kind == "azure" else None
    errors = Translator(label, url, endpoint, config)
    backend: S3Store | AzureStore
    try:
        if url.kind == "s3":
            backend = S3Store(url.bucket, config=cast("S3Config", config), retry_config=RETRY)
        else:
            backend = AzureStore(url.bucket, config=cast("AzureConfig", config), retry_config=RETRY)
    except CAUGHT as exc:
        raise errors.configuration(exc) from None
    _let_callbacks_finish_at_exit()
    return Client(backend, (url.kind, url.bucket, (endpoint or "").rstrip("/"), account), errors)


@functools.cache
def _let_callbacks_finish_at_exit() -> None:
    """Give obstore's threads a moment at interpreter exit.

    A tokio thread that has just handed a result to asyncio can still be waiting to take the
    GIL back when the interpreter finalizes; CPython 3.11 ends such a thread with
    ``pthread_exit``, which aborts the whole process (exit 134) through its Rust frames. A
    command that exits right after its last request hit that about one run in fifteen. A
    short sleep at exit releases the GIL so that the thread finishes first.
    """
    atexit.register(time.sleep, 0.05)


def contiguous(data: Payload) -> Buffer:
    """``data`` as one contiguous run of bytes: a view of wider items or with strides is
    stored as its raw bytes, as a file write would store them. Several buffers are joined:
    an object store takes a single-request put as one body."""
    if isinstance(data, tuple):
        return b"".join(contiguous(part) for part in data)
    if not isinstance(data, memoryview) or (data.format == "B" and data.ndim == 1 and data.c_contiguous):
        return data
    return data.cast("B") if data.c_contiguous else data.tobytes()
