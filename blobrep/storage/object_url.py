"""Where an object-store replica lives: ``s3://BUCKET/PREFIX`` or ``az://CONTAINER/PREFIX``.

A region's configuration names each replica's store by such a URL, and messages name the store
by it, so the URL is parsed once, here, into a value that cannot be wrong: the bucket or
container name follows the service's own naming rules (a name the service would refuse is
caught before any request, with a message that says what a valid name looks like), and the
prefix is made of storage-key segments (:mod:`blobrep.core.keys`), so a prefix can never
escape or alias within the bucket any more than a key can.

Parsing does no I/O: whether the bucket exists, and whether the credentials open it, is
:meth:`blobrep.storage.objects.ObjectStore.check`'s question.

``azure://`` is accepted as an alias of ``az://`` (both are common spellings); the canonical
form, which :func:`str` gives and which parses back to an equal value, is ``az://``. A
trailing slash is tolerated and dropped: ``s3://b/p/`` and ``s3://b/p`` are the same store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from blobrep.core.keys import validate_key
from blobrep.errors import InvalidKeyError, InvalidParameterError

ObjectKind = Literal["s3", "azure"]

_SCHEMES: dict[str, ObjectKind] = {"s3": "s3", "az": "azure", "azure": "azure"}
_CANONICAL_SCHEME: dict[ObjectKind, str] = {"s3": "s3", "azure": "az"}
_USAGE = "use s3://BUCKET/PREFIX or az://CONTAINER/PREFIX"

# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
_S3_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_S3_BUCKET_RULE = (
    "3 to 63 lowercase letters, digits, dots or hyphens, starting and ending with a letter or digit"
)
_IPV4_RE = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
_S3_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_S3_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")

# https://learn.microsoft.com/rest/api/storageservices/naming-and-referencing-containers--blobs--and-metadata
_AZURE_CONTAINER_RE = re.compile(r"[a-z0-9](?:-?[a-z0-9])*")
_AZURE_CONTAINER_RULE = (
    "3 to 63 lowercase letters, digits or single hyphens, starting and ending with a letter or digit"
)


def s3_bucket_problem(name: str) -> str | None:
    """Why ``name`` is not a valid S3 bucket name, or None if it is one."""
    if not (3 <= len(name) <= 63) or _S3_BUCKET_RE.fullmatch(name) is None:
        return _S3_BUCKET_RULE
    if ".." in name or ".-" in name or "-." in name:
        return "no two dots in a row, and no dot next to a hyphen"
    if _IPV4_RE.fullmatch(name) is not None:
        return "it may not look like an IP address"
    if name.startswith(_S3_RESERVED_PREFIXES) or name.endswith(_S3_RESERVED_SUFFIXES):
        return (
            f"prefixes {', '.join(_S3_RESERVED_PREFIXES)} and suffixes"
            f" {', '.join(_S3_RESERVED_SUFFIXES)} are reserved by AWS"
        )
    return None


def azure_container_problem(name: str) -> str | None:
    """Why ``name`` is not a valid Azure Blob container name, or None if it is one."""
    if not (3 <= len(name) <= 63) or _AZURE_CONTAINER_RE.fullmatch(name) is None:
        return _AZURE_CONTAINER_RULE
    return None


@dataclass(frozen=True, slots=True)
class ObjectUrl:
    """A bucket (S3) or container (Azure) and a key prefix inside it.

    ``prefix`` is ``""`` (the whole bucket) or storage-key segments joined by ``/``, with no
    leading or trailing slash; key ``k`` of the store lives at object ``{prefix}/{k}``.
    Constructing one directly validates it like :meth:`parse` does.
    """

    kind: ObjectKind
    bucket: str
    prefix: str = ""

    def __post_init__(self) -> None:
        if self.kind not in _CANONICAL_SCHEME:
            raise InvalidParameterError(f"object-store kind {self.kind!r} is not known: use 's3' or 'azure'")
        if self.kind == "s3":
            problem, what = s3_bucket_problem(self.bucket), "S3 bucket name"
        else:
            problem, what = azure_container_problem(self.bucket), "Azure container name"
        if problem is not None:
            raise InvalidParameterError(f"{what} {self.bucket!r} is not valid: {problem}")
        if self.prefix:
            try:
                validate_key(self.prefix)
            except InvalidKeyError as exc:
                raise InvalidParameterError(
                    f"prefix {self.prefix!r} of {self.kind} store {self.bucket!r} is not valid: {exc}"
                ) from None

    @classmethod
    def parse(cls, text: str) -> ObjectUrl:
        """Parse ``s3://BUCKET[/PREFIX]``, ``az://CONTAINER[/PREFIX]`` or ``azure://...``.

        Raises:
            InvalidParameterError: naming what is wrong (the scheme, the bucket or container
                name, or a segment of the prefix) and what a valid URL looks like.
        """
        if not isinstance(text, str):
            raise InvalidParameterError(f"{text!r} is not an object-store URL: {_USAGE}")
        scheme, separator, rest = text.partition("://")
        kind = _SCHEMES.get(scheme.lower()) if separator else None
        if kind is None:
            raise InvalidParameterError(f"{text!r} is not an object-store URL: {_USAGE}")
        bucket, _, prefix = rest.partition("/")
        what = "bucket" if kind == "s3" else "container"
        if not bucket:
            raise InvalidParameterError(f"{text!r} names no {what}: {_USAGE}")
        if prefix.endswith("/"):  # "s3://b/p/": one trailing slash is dropped ("s3://b/" has none)
            prefix = prefix[:-1]
            if not prefix:
                raise InvalidParameterError(f"{text!r} has an empty prefix segment: {_USAGE}")
        try:
            return cls(kind, bucket, prefix)
        except InvalidParameterError as exc:
            raise InvalidParameterError(f"{text!r} is not a valid object-store URL: {exc}") from None

    def __str__(self) -> str:
        base = f"{_CANONICAL_SCHEME[self.kind]}://{self.bucket}"
        return f"{base}/{self.prefix}" if self.prefix else base

    def child(self, segment: str) -> ObjectUrl:
        """The store below this one at ``segment`` (one key segment, or several joined by
        ``/``): ``s3://b/region`` -> ``s3://b/region/replica-1``.

        Raises:
            InvalidParameterError: if ``segment`` is not a valid storage key.
        """
        try:
            validate_key(segment)
        except InvalidKeyError as exc:
            raise InvalidParameterError(f"cannot name a store below {self}: {exc}") from None
        return ObjectUrl(self.kind, self.bucket, f"{self.prefix}/{segment}" if self.prefix else segment)
