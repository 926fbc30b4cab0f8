"""The catalog's pin on a version's manifest: its exact size and SHA-256.

Apart from :mod:`blobrep.core.manifest` because every catalog row carries a pin, and reading a
row should not load the manifest parser's dependencies (the chunker, the codec).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from blobrep.errors import ManifestMismatchError


@dataclass(frozen=True, slots=True)
class ManifestPin:
    """What the catalog records of a version's manifest at publish: its exact size and SHA-256.

    A replica's manifest is used only if it is byte for byte the pinned one. SHA-256 rather
    than xxh3: the pin is what stops a planted manifest, so it must resist a forger, and a
    manifest is small enough for a cryptographic hash to cost nothing.
    """

    size: int
    sha256: str

    @classmethod
    def of(cls, document: bytes) -> ManifestPin:
        """The pin of the encoded manifest ``document``."""
        return cls(len(document), hashlib.sha256(document).hexdigest())

    def check(self, document: bytes, where: str) -> None:
        """Raise unless ``document`` is the pinned manifest; ``where`` names its place.

        Raises:
            ManifestMismatchError: the size or the SHA-256 differs from the pin.
        """
        if len(document) != self.size:
            raise ManifestMismatchError(
                f"{where} is {len(document)} bytes, but the catalog pinned a manifest of {self.size}"
                " bytes for this version: it is not this version's manifest"
            )
        actual = hashlib.sha256(document).hexdigest()
        if actual != self.sha256:
            raise ManifestMismatchError(
                f"{where} has SHA-256 {actual[:16]}..., but the catalog pinned {self.sha256[:16]}...:"
                " it is not this version's manifest"
            )
