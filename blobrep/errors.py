"""The one exception tree of blobrep.

Every error a user can see is a :class:`BlobrepError`. Adapters translate foreign errors
(``OSError``, SDK exceptions, ``zstd`` errors) into these types at their boundary, always
``raise ... from exc``, so nothing above ``storage/`` ever handles an ``OSError``. Each message
names what was wrong and, where it helps, what would be right.

::

    * BlobrepError
      x InvalidInputError          the caller asked for something malformed
        - InvalidNameError         a gallery, image or blob name breaks its pattern
        - InvalidVersionError      not MAJOR.MINOR.PATCH with 32-bit parts
        - InvalidKeyError          a storage key that is malformed or escapes its root
        - InvalidParameterError    an option out of range (chunk sizes, levels, counts)
        - SourceError              a source file missing or not a file, a stream cut short
        - InvalidRegionError       a region name, target-region spec or replica count
        - ImmutableFieldError      an update that changes a field fixed at creation
      x NotFoundError              something named does not exist
        - ManifestNotFoundError    no manifest for that blob in that replica
        - ChunkMissingError        a manifest names a chunk that a replica lacks
        - ResourceNotFoundError    a gallery, definition, version, region or principal
      x ConflictError              the state forbids the call as asked: never retry it unchanged
        - AlreadyExistsError       something exists where the caller asked to create it
        - PreconditionError        the resource is not in a state that allows the call (still
                                   holds children, the bootstrap admin, moved to another state)
      x BusyError (retryable)      a lease is held by another live operation, or this
                                   operation's lease was lost: nothing changed, retry later
      x UnauthenticatedError       a bearer token that is malformed, unknown, expired or revoked
      x AccessDeniedError          the caller's roles do not allow the action at that scope
      x UnavailableError           the version exists but cannot be served there yet
      x CopyError                  a version's disk could not be copied from its source
                                   version (no good copy of a piece, a replica that failed)
      x IntegrityError             stored data does not match what describes it
        - ManifestError            a manifest that is malformed, inconsistent or hostile
          - ManifestMismatchError  a well-formed manifest that is not the one the catalog recorded
        - ChunkCorruptError        a chunk whose bytes do not hash to its name
        - BlobDigestMismatchError  restored bytes that do not hash to the manifest's digest
        - DamagedObjectError       a stored key that is not a regular file inside its store
      x StorageError               a store or local file failed to do what was asked (I/O,
                                   permissions, a read-only file system)
        - StorageFullError         no space left (or the quota is used up) where it writes
        - StorageAccessDeniedError   an object store refused the credentials it was given
        - StorageUnreachableError    an object store's endpoint did not answer (retryable)
        - StorageMissingBucketError  an object store's bucket or container does not exist
        - LockedError (retryable)  the catalog stayed locked by another process: retry later

An error class says whether to retry: :attr:`BlobrepError.retryable` is True only where the
same call, unchanged, can succeed once something else finishes (:class:`BusyError`,
:class:`LockedError`, :class:`StorageUnreachableError`). Faces read it (the CLI's exit code, a
daemon's status code) rather than listing classes, so a retryable error added later is
reported as one without touching them.
"""

from __future__ import annotations

from typing import ClassVar


class BlobrepError(Exception):
    """Base of every error blobrep raises on purpose; the CLI prints it as one line."""

    retryable: ClassVar[bool] = False
    """True if the same call, unchanged, can succeed later: something else holds what it
    needs for now. False means it fails the same way until the input or the state changes."""


class InvalidInputError(BlobrepError):
    """The caller passed a value that can never work; fix the input and call again."""


class InvalidNameError(InvalidInputError):
    """A gallery, image, version path or blob name does not match its pattern."""


class InvalidVersionError(InvalidInputError):
    """An image version is not ``MAJOR.MINOR.PATCH`` with parts in 0..2**32-1."""


class InvalidKeyError(InvalidInputError):
    """A storage key is malformed or would escape the store's root."""


class InvalidParameterError(InvalidInputError):
    """A numeric or enumerated option is out of its allowed range."""


class SourceError(InvalidInputError):
    """A source cannot be published: a file that is missing, unreadable or not a regular file,
    or a stream (standard input, an upload) that broke off or ended short of, or ran past, the
    length it announced; nothing of it was committed."""


class InvalidRegionError(InvalidInputError):
    """A region name, a ``name[=count][=storage type]`` target or a replica count is wrong."""


class ImmutableFieldError(InvalidInputError):
    """An update tries to change a field that is fixed once the resource exists."""


class NotFoundError(BlobrepError):
    """Something that was named does not exist."""


class ResourceNotFoundError(NotFoundError):
    """A gallery, image definition, image version, region or principal does not exist."""


class ManifestNotFoundError(NotFoundError):
    """A replica holds no manifest for the blob that was asked for."""


class ChunkMissingError(NotFoundError):
    """A manifest names a chunk that a replica does not hold.

    ``digest`` and ``replica`` say which chunk and where, so that a reader can fail over
    to another replica and a repair knows what to copy.
    """

    def __init__(self, digest: str, replica: str) -> None:
        super().__init__(f"chunk {digest} is missing in replica {replica}")
        self.digest = digest
        self.replica = replica


class ConflictError(BlobrepError):
    """The call conflicts with the state of what it names; repeated unchanged it fails again.

    Raised as one of its subclasses; catch it to handle both.
    """


class AlreadyExistsError(ConflictError):
    """Something exists where the caller asked to create it: a gallery, definition, version,
    region, principal, group member or role assignment, a blob with other content, a store
    key written create-if-absent. Choose another name, or delete the existing one first."""


class PreconditionError(ConflictError):
    """The resource is not in a state that allows the call: a gallery or definition that still
    holds children, the home's bootstrap admin (it cannot be removed), a version that moved to
    another provisioning state in between. Change that state first."""


class BusyError(BlobrepError):
    """A replica or version is held by another live operation (garbage collection, a writer,
    a replication: a lease or an operation record), or the lease this operation held was
    lost; nothing was changed, and the same call can succeed later. The message names the
    holder.

    Not a :class:`ConflictError`: a conflict stays until someone changes the state, this goes
    away by itself.
    """

    retryable = True


class UnauthenticatedError(BlobrepError):
    """A bearer token does not prove who the caller is: it is missing or malformed, names no
    token, carries the wrong secret, has expired or was revoked.

    The message never repeats the token. An unknown id and a wrong secret read the same
    ("invalid token"), so a caller holding a guessed or altered token learns nothing about
    which ids exist; only one holding the right secret is told that its token expired or
    was revoked. Not an :class:`AccessDeniedError`: nobody was identified, so there is no
    principal whose roles could be wrong (a daemon answers 401, not 403).
    """


class AccessDeniedError(BlobrepError):
    """The calling principal holds no role that allows the action at that scope.

    The message names the principal, the action and the scope, so that whoever can grant
    the role knows exactly what to grant.
    """


class UnavailableError(BlobrepError):
    """The resource exists but cannot serve the request yet (not Completed in that region)."""


class CopyError(BlobrepError):
    """A version created from another version could not get its disk: a piece of the source
    had no good copy in the source region, or a replica of the new version failed. The message
    says which, in the words replication uses; the new version is left Failed with the same
    reason, and running the same create again redoes it, copying only what is still missing."""


class IntegrityError(BlobrepError):
    """Stored data does not match the digest or description that names it."""


class ManifestError(IntegrityError):
    """A manifest is malformed, inconsistent or hostile; it is never partly trusted."""


class ManifestMismatchError(ManifestError):
    """A replica's manifest is not the one the catalog recorded for the version (its pin, or
    its size, digest and counts): another version's, reordered, or planted. The replica is
    damaged for that version; a good copy elsewhere stands in for it."""


class ChunkCorruptError(IntegrityError):
    """A chunk's stored bytes do not decode to bytes that hash to its digest."""

    def __init__(self, digest: str, replica: str, reason: str) -> None:
        super().__init__(f"chunk {digest} is corrupt in replica {replica}: {reason}")
        self.digest = digest
        self.replica = replica
        self.reason = reason


class BlobDigestMismatchError(IntegrityError):
    """The whole restored blob does not hash to the digest its manifest records."""


class DamagedObjectError(IntegrityError):
    """A key of a store is there but is not a regular file inside the store: a FIFO, a device,
    a socket, a directory or a symbolic link. It is never opened for reading (a FIFO would
    block, a link could lead anywhere); the replica holding it is damaged at that key.

    ``key`` and ``replica`` say where, so that a reader fails over and a repair knows what
    to replace.
    """

    def __init__(self, key: str, replica: str, kind: str) -> None:
        super().__init__(f"{key} in {replica} is {kind}, not a regular file")
        self.key = key
        self.replica = replica
        self.kind = kind


class StorageError(BlobrepError):
    """A store, the catalog or a local file (an output, the configuration) could not be
    written or read: an I/O error, permission denied, a read-only file system, a vanished
    root. The message names the file or key and the cause in words."""


class StorageFullError(StorageError):
    """No space left (or the disk quota used up) where a store or file writes; nothing
    visible was left half-written."""


class LockedError(StorageError):
    """The catalog stayed locked by another process's write for longer than the busy timeout;
    nothing was done, and the same call can succeed once that process finishes."""

    retryable = True


class StorageAccessDeniedError(StorageError):
    """An object store refused the credentials it was given: a wrong or expired key, a bad
    signature, or credentials without permission on the bucket or container. The message
    names the store and the settings to check; it never repeats a secret."""


class StorageUnreachableError(StorageError):
    """An object store's endpoint could not be reached: the connection was refused, the name
    did not resolve, or the server did not answer in time, still after the store's own short
    retries. The message names the store, the endpoint and the reason; the same call can
    succeed once the service is back (or fail the same way until a wrong endpoint is fixed)."""

    retryable = True


class StorageMissingBucketError(StorageError):
    """The bucket (S3) or container (Azure) a store is configured with does not exist at its
    endpoint. Nothing creates it implicitly: create it, or correct the store's URL."""
