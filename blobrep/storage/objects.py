"""The object-store store: a replica kept in an S3 bucket or an Azure Blob container.

A region's replica can live in a real object store so that regions can be real cloud regions
(the architecture's "beyond one machine"). One client serves both services: ``obstore``, the
Python binding of Rust's ``object_store``, which gives ranged reads, create-only and if-match
puts, server-side copies and its own retries, with an asyncio API that runs under anyio.

Layout and keys are those of a local replica: key ``k`` lives at object ``{prefix}/{k}``, and
keys are validated (:mod:`blobrep.core.keys`) before any request. Both services cap an object
name at 1024 characters, so a key that would not fit under the prefix is refused up front.

Credentials, endpoint and region come from the standard environment variables, or from
``config`` (obstore's keys), which overrides them; retries of transient failures happen inside
the client with capped backoff, and callers own the overall time (cancelling drops the request
at once). :mod:`blobrep.storage._object_client` says which variables and why. Secrets never
reach a name, a repr or a message.

Errors are translated at this boundary (:mod:`blobrep.storage._object_errors`): nothing
above ``storage/`` sees an obstore exception. A HEAD answer has no body, so a missing bucket
looks like a missing key to ``stat`` and ``exists``; :meth:`ObjectStore.check` tells them apart.

Puts are single requests (never multipart): an object appears whole or not at all, a killed
writer leaves nothing behind (``sweep_temporaries`` finds nothing) and a returned put is
durable (``sync`` does nothing). A single put is limited to 5 GiB, far above any chunk.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, NoReturn

import anyio
import obstore

from blobrep.core.keys import validate_key, validate_prefix
from blobrep.errors import (
    BlobrepError,
    InvalidKeyError,
    InvalidParameterError,
    NotFoundError,
    StorageError,
)
from blobrep.storage._object_client import MAX_OBJECT_NAME, connect, contiguous
from blobrep.storage._object_errors import CAUGHT
from blobrep.storage.base import ObjectInfo, Payload, Store

if TYPE_CHECKING:
    from obstore import GetOptions, ObjectMeta, PutMode

    from blobrep.storage.object_url import ObjectUrl

_STAT_CONCURRENCY = 16
_LIST_PAGE = 1000


class ObjectStore:
    """A store kept as objects under ``url``'s prefix in an S3 bucket or Azure container.

    Args:
        url: the bucket or container and the prefix (:class:`ObjectUrl`).
        config: obstore settings that override the environment (see the module docstring).
        name: how messages name this store (default: the URL).
    """

    def __init__(
        self, url: ObjectUrl, *, config: Mapping[str, str] | None = None, name: str | None = None
    ) -> None:
        self._url = url
        self._name = name or str(url)
        self._root = url.prefix
        label = self._name if self._name == str(url) else f"{self._name} ({url})"
        client = connect(url, dict(config or {}), label)
        self._backend, self._service, self._errors = client.backend, client.service, client.errors

    @property
    def name(self) -> str:
        return self._name

    @property
    def url(self) -> ObjectUrl:
        return self._url

    def __repr__(self) -> str:
        return f"ObjectStore({str(self._url)!r})"

    def _path(self, key: str) -> str:
        """The object name of a valid ``key``; an invalid or too long one is refused."""
        try:
            validate_key(key)
        except InvalidKeyError as exc:
            raise InvalidKeyError(f"{exc} (store {self._errors.label})") from None
        path = f"{self._root}/{key}" if self._root else key
        if len(path) > MAX_OBJECT_NAME:
            raise InvalidKeyError(
                f"storage key {key[:40]!r}... ({len(key)} characters) is too long for {self._errors.label}:"
                f" under its prefix the object name would be {len(path)} characters, and object"
                f" stores allow {MAX_OBJECT_NAME}; keys here can have at most"
                f" {MAX_OBJECT_NAME - len(path) + len(key)}"
            )
        return path

    def _key(self, path: str) -> str | None:
        """The key of a listed object name, or None for an object that is no valid key."""
        if self._root:
            if not path.startswith(self._root + "/"):
                return None
            path = path[len(self._root) + 1 :]
        try:
            return validate_key(path)
        except InvalidKeyError:
            return None

    def _fail(self, exc: Exception, action: str, key: str) -> NoReturn:
        self._errors.throw(self._errors.translate(exc, action, key), exc)

    # --- reads ------------------------------------------------------------------------

    async def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        """The bytes of ``key`` from ``offset``, at most ``length`` of them (all if None);
        ``b""`` from the end on. Only the range asked for crosses the network.

        Raises:
            NotFoundError: if ``key`` does not exist.
        """
        if offset < 0 or (length is not None and length < 0):
            raise InvalidParameterError(
                f"range offset={offset} length={length} of {key} in {self._name} is negative;"
                " offsets and lengths are 0 or more"
            )
        path = self._path(key)
        if length == 0:
            await self._head(key, path)
            return b""
        options: GetOptions = {}
        if length is not None:
            options["range"] = (offset, offset + length)
        elif offset:
            options["range"] = {"offset": offset}
        try:
            result = await obstore.get_async(self._backend, path, options=options)
            return bytes(await result.bytes_async())
        except CAUGHT as exc:
            error = self._errors.translate(exc, "reading", key)
            # From the end on, S3 answers 416 and Azurite the whole object, which obstore
            # refuses; the object is there (a missing one answers 404), so ask its size.
            if offset and type(error) is StorageError and (await self._head(key, path))["size"] <= offset:
                return b""
            self._errors.throw(error, exc)

    async def get_with_etag(self, key: str) -> tuple[bytes, str]:
        """The bytes of ``key`` and its ETag, for :meth:`put_if_match`.

        Raises:
            NotFoundError: if ``key`` does not exist.
        """
        path = self._path(key)
        try:
            result = await obstore.get_async(self._backend, path)
            data = bytes(await result.bytes_async())
        except CAUGHT as exc:
            self._fail(exc, "reading", key)
        etag = result.meta["e_tag"]
        if etag is None:
            raise StorageError(f"{self._errors.label}: the server gave no ETag for {key}")
        return data, etag

    async def _head(self, key: str, path: str) -> ObjectMeta:
        try:
            return await obstore.head_async(self._backend, path)
        except CAUGHT as exc:
            self._fail(exc, "inspecting", key)

    async def _stat_or_none(self, key: str, path: str) -> ObjectInfo | None:
        try:
            meta = await self._head(key, path)
        except NotFoundError:
            return None
        return ObjectInfo(key, meta["size"], meta["last_modified"].timestamp())

    async def exists(self, key: str) -> bool:
        """True if ``key`` holds a value."""
        return await self._stat_or_none(key, self._path(key)) is not None

    async def stat(self, key: str) -> ObjectInfo:
        """Size and modification time (the server's clock) of ``key``.

        Raises:
            NotFoundError: if ``key`` does not exist.
        """
        info = await self._stat_or_none(key, self._path(key))
        if info is None:
            raise NotFoundError(f"{key} not found in {self._errors.label}")
        return info

    async def stat_many(self, keys: Sequence[str]) -> builtins.list[ObjectInfo | None]:
        """``stat`` of every key, None where a key does not exist: one HEAD per distinct key,
        at most 16 in flight (object stores have no batch HEAD)."""
        paths = {key: self._path(key) for key in keys}
        found: dict[str, ObjectInfo | None] = {}
        failures: builtins.list[BlobrepError] = []
        limiter = anyio.CapacityLimiter(_STAT_CONCURRENCY)

        async def one(key: str, scope: anyio.CancelScope) -> None:
            async with limiter:
                try:
                    found[key] = await self._stat_or_none(key, paths[key])
                except BlobrepError as exc:  # one error for the caller, not an ExceptionGroup
                    failures.append(exc)
                    scope.cancel()

        async with anyio.create_task_group() as tg:
            for key in paths:
                tg.start_soon(one, key, tg.cancel_scope)
        if failures:
            raise failures[0]
        return [found[key] for key in keys]

    async def list(self, prefix: str = "") -> AsyncIterator[str]:
        """Every key that starts with ``prefix`` as a string, each once, in no promised order.

        Object stores list by path segment, so for a prefix ending inside a segment ("a/b"
        must find "a/bc" too) the parent level is listed with a delimiter first, and only the
        names that match are listed in full. Objects under the prefix whose names are not
        valid keys (written by something else) are skipped.
        """
        try:
            validate_prefix(prefix)
        except InvalidKeyError as exc:
            raise InvalidKeyError(f"{exc} (store {self._errors.label})") from None
        base, _, partial = prefix.rpartition("/")
        if not partial:
            async for key in self._walk(base):
                yield key
            return
        try:
            level = await obstore.list_with_delimiter_async(self._backend, self._listing_path(base))
        except CAUGHT as exc:
            self._fail(exc, "listing", prefix)
        for meta in level["objects"]:
            name = self._key(meta["path"])
            if name is not None and name.startswith(prefix):
                yield name
        for directory in level["common_prefixes"]:
            below = self._key(directory)
            if below is not None and below.startswith(prefix):
                async for key in self._walk(below):
                    yield key

    def _listing_path(self, base: str) -> str | None:
        joined = "/".join(part for part in (self._root, base) if part)
        return joined or None

    async def _walk(self, base: str) -> AsyncIterator[str]:
        """Every key below ``base`` (a directory, or "" for all), page by page."""
        stream = obstore.list(self._backend, self._listing_path(base), chunk_size=_LIST_PAGE)
        while True:
            try:
                page = await anext(stream)
            except StopAsyncIteration:
                return
            except CAUGHT as exc:
                self._fail(exc, "listing", f"{base}/" if base else "(the whole store)")
            for meta in page:
                key = self._key(meta["path"])
                if key is not None:
                    yield key

    async def check(self) -> None:
        """Prove that the bucket or container exists and these credentials can list it
        (one listing request for at most one name under the prefix).

        Raises:
            StorageMissingBucketError, StorageAccessDeniedError, StorageUnreachableError,
            StorageError: whichever stands in the way.
        """
        stream = obstore.list(self._backend, self._root or None, chunk_size=1)
        try:
            await anext(stream)
        except StopAsyncIteration:
            return
        except CAUGHT as exc:
            self._fail(exc, "listing", "its prefix")

    # --- writes -----------------------------------------------------------------------

    async def put(self, key: str, data: Payload, *, if_absent: bool = False) -> None:
        """Store ``data`` under ``key`` in one request: it appears whole or not at all.

        Raises:
            AlreadyExistsError: if ``if_absent`` and ``key`` exists (a create-only put).
        """
        await self._put(key, data, "create" if if_absent else "overwrite")

    async def put_if_absent(self, key: str, data: bytes | bytearray | memoryview) -> str:
        """Create ``key`` only if it does not exist; return its new ETag.

        Raises:
            AlreadyExistsError: if ``key`` exists (another writer created it first).
        """
        return await self._put(key, data, "create")

    async def put_if_match(self, key: str, data: bytes | bytearray | memoryview, etag: str) -> str:
        """Replace ``key`` only if it still holds the version ``etag`` names (from
        :meth:`get_with_etag` or an earlier put); return the new ETag. Two writers racing
        from the same ETag cannot both win.

        Raises:
            PreconditionError: if ``key`` changed since, or no longer exists.
        """
        return await self._put(key, data, {"e_tag": etag})

    async def _put(self, key: str, data: Payload, mode: PutMode) -> str:
        path = self._path(key)
        try:
            result = await obstore.put_async(
                self._backend, path, contiguous(data), mode=mode, use_multipart=False
            )
        except CAUGHT as exc:
            self._fail(exc, "writing", key)
        return result["e_tag"] or ""

    async def delete(self, key: str) -> bool:
        """Remove ``key``; False if it did not exist. S3 answers a delete of a missing key
        like any other, so a HEAD asks first; two racing deletes may both return True."""
        path = self._path(key)
        if await self._stat_or_none(key, path) is None:
            return False
        try:
            await obstore.delete_async(self._backend, path)
        except CAUGHT as exc:
            error = self._errors.translate(exc, "deleting", key)
            if isinstance(error, NotFoundError):
                return False
            self._errors.throw(error, exc)
        return True

    @property
    def copy_service(self) -> tuple[str, str, str, str | None]:
        """Where this store is (kind, bucket, endpoint, account): stores that agree copy inside it."""
        return self._service

    async def copy_from(self, source: Store, key: str) -> bool:
        """Copy ``key`` from ``source`` into this store inside the service, without the
        bytes passing through this process; False if that is impossible (another service,
        endpoint, account or bucket), and the caller then streams the value.

        The copy overwrites: S3 has no copy-if-not-exists (obstore refuses it there), so
        this is for content-addressed chunks, where an overwrite writes the same bytes.
        Create manifests with ``put(..., if_absent=True)`` instead.

        Raises:
            NotFoundError: if ``key`` does not exist in ``source``.
        """
        if not isinstance(source, ObjectStore) or source._service != self._service:
            return False
        source_path, path = source._path(key), self._path(key)
        if source_path == path:
            await self.stat(key)  # the same object: nothing to copy, but it must be there
            return True
        try:
            await obstore.copy_async(self._backend, source_path, path, overwrite=True)
        except CAUGHT as exc:
            error = self._errors.translate(exc, "copying", key)
            if isinstance(error, NotFoundError):
                error = NotFoundError(
                    f"{key} not found in {source._errors.label} (copying it to {self._name})"
                )
            self._errors.throw(error, exc)
        return True

    async def sync(self) -> None:
        """Nothing to do: an object put is durable when the put returns."""

    async def sweep_temporaries(
        self, prefix: str = "", *, older_than: float, dry_run: bool = False
    ) -> builtins.list[ObjectInfo]:
        """Always empty: puts are single requests, so an interrupted one leaves nothing
        behind (no temporary object, no unfinished multipart upload).

        Raises:
            InvalidKeyError: if ``prefix`` is not a valid listing prefix.
            InvalidParameterError: if ``older_than`` is negative or not a finite number.
        """
        try:
            validate_prefix(prefix)
        except InvalidKeyError as exc:
            raise InvalidKeyError(f"{exc} (store {self._errors.label})") from None
        if not older_than >= 0 or math.isinf(older_than):
            raise InvalidParameterError(
                f"older_than={older_than} for sweeping {prefix or '(the whole store)'} in"
                f" {self._name} must be a finite number of seconds, 0 or more"
            )
        return []
