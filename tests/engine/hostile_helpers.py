"""Helpers for the hostile-replica tests: a published pair of versions, and the faults planted in it.

One image is published once per module as ``1.0.0`` and an edited copy as ``1.0.1`` into a
region of two replicas (:func:`build_published`); each test copies that region
(:func:`copy_region`) and plants one fault in ``1.0.0`` in replica-1 only. A fault is
planted by a function of the :class:`Scene`, and says what a scrub must report and what a
read of the damaged replica alone must raise.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import stat
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal

from blobrep.core.gallery import BlobInfo
from blobrep.core.keys import chunk_key, manifest_key
from blobrep.core.names import BlobName
from blobrep.core.synthetic import rewrite_runs
from blobrep.engine.publish import PublishResult, publish
from blobrep.errors import (
    BlobrepError,
    ChunkCorruptError,
    ChunkMissingError,
    ManifestError,
    ManifestNotFoundError,
)
from blobrep.storage import LocalStore
from tests.engine.helpers import GALLERY, MIB, SMALL_CHUNKS, apply_edits, flip_byte

V1: Final = BlobName.parse("img/versions/1.0.0")
V2: Final = BlobName.parse("img/versions/1.0.1")
R1: Final = "westus/replica-1"
R2: Final = "westus/replica-2"
#: Zero entries in the manifest that claims a huge blob (about 57 MB of JSON).
HUGE_CLAIM_ENTRIES: Final = 1_900_000
#: The size of the sparse files planted where a manifest or a chunk should be.
SPARSE_SIZE: Final = 4 << 30

ProblemKind = Literal["missing", "corrupt", "manifest"]


def write_image(path: Path, seed: int) -> Path:
    """A 4 MiB VM-like image: incompressible data, text-like data and two zero runs."""
    rng = random.Random(seed)
    text = b"".join(b"service %d started on port %d\n" % (i, rng.randrange(1, 65536)) for i in range(40000))
    parts = [
        rng.randbytes(MIB),
        bytes(MIB // 2),
        text[:MIB],
        bytes(MIB // 2),
        rng.randbytes(MIB),
    ]
    path.write_bytes(b"".join(parts))
    return path


def blob_info(result: PublishResult) -> BlobInfo:
    """What the catalog records of a version at publish, its manifest pin included."""
    return BlobInfo(
        result.size, result.digest, result.stored_bytes, result.chunks, manifest=result.manifest_pin
    )


@dataclass(frozen=True)
class Published:
    """A region of two pristine replicas holding ``V1`` (``image``) and ``V2`` (``edited``)."""

    region: Path
    image: Path
    edited: Path
    v1: BlobInfo
    v2: BlobInfo
    v1_digests: tuple[str, ...]
    """``V1``'s stored chunks, distinct, in manifest order."""
    huge_claim: Path
    """A manifest document of ``HUGE_CLAIM_ENTRIES`` zero entries, built once."""


def region_stores(root: Path) -> tuple[LocalStore, LocalStore]:
    """The two replicas of the region under ``root``, named as the embedded layout names them."""
    return (
        LocalStore(root / "replica-1", name=R1, create=True),
        LocalStore(root / "replica-2", name=R2, create=True),
    )


async def build_published(directory: Path) -> Published:
    """Publish both versions with small chunks into a region under ``directory``, each chunk
    stored on its own: the damage below is planted at one chunk's object (damage to packs
    is planted in test_packed_reads.py and test_packed_scrub.py)."""
    image = write_image(directory / "image.raw", seed=21)
    edited = directory / "image-v2.raw"
    shutil.copyfile(image, edited)
    apply_edits(edited, rewrite_runs(edited.stat().st_size, fraction=0.03, runs=4, seed=5))
    region = directory / "region"
    stores = region_stores(region)
    first = await publish(image, stores, GALLERY, V1, chunking=SMALL_CHUNKS, pack_size=None)
    second = await publish(edited, stores, GALLERY, V2, chunking=SMALL_CHUNKS, pack_size=None)
    document = json.loads(manifest_file(stores[0], V1).read_bytes())
    digests = tuple(dict.fromkeys(entry["digest"] for entry in document["chunks"] if "digest" in entry))
    assert len(digests) >= 8 and first.zero_chunks > 0, "the image should give many chunks and zero runs"
    return Published(
        region,
        image,
        edited,
        blob_info(first),
        blob_info(second),
        digests,
        write_huge_claim(directory, document),
    )


def write_huge_claim(directory: Path, document: dict[str, Any]) -> Path:
    """A well-formed manifest of ``HUGE_CLAIM_ENTRIES`` zero chunks of the largest size."""
    length = document["chunking"]["max_size"]
    entry = json.dumps({"zero": True, "length": length}, separators=(",", ":"))
    head = dict(document, size=length * HUGE_CLAIM_ENTRIES, chunks=[])
    text = json.dumps(head, separators=(",", ":"))
    assert text.endswith('"chunks":[]}')
    path = directory / "huge-claim.json"
    with open(path, "w") as out:
        out.write(text[:-2])
        out.write(",".join([entry] * HUGE_CLAIM_ENTRIES))
        out.write("]}\n")
    return path


def copy_region(published: Published, root: Path) -> tuple[LocalStore, LocalStore]:
    """A private copy of the published region under ``root``: its two replicas."""
    shutil.copytree(published.region, root, symlinks=True)
    return region_stores(root)


def manifest_file(store: LocalStore, blob: BlobName) -> Path:
    return store.root / manifest_key(GALLERY, blob)


def chunk_file(store: LocalStore, digest: str) -> Path:
    return store.root / chunk_key(GALLERY, digest)


# --- faults -----------------------------------------------------------------------------


@dataclass
class Scene:
    """One test's region: replica-1 (to damage), replica-2 (intact), and a place outside both."""

    published: Published
    r1: LocalStore
    r2: LocalStore
    outside: Path


@dataclass(frozen=True)
class Planted:
    """What a fault left behind: where it is, and what a test checks afterwards."""

    where: str
    """The damaged chunk's digest, or the damaged manifest's key."""
    fifo: Path | None = None
    outside: Path | None = None
    """A file outside the replica that a planted link leads to."""
    outside_bytes: bytes = b""

    def assert_outside_untouched(self) -> None:
        """Nothing was written through the link to the file outside the replica."""
        if self.outside is not None:
            info = os.lstat(self.outside)
            assert stat.S_ISREG(info.st_mode)
            assert self.outside.read_bytes() == self.outside_bytes


@dataclass(frozen=True)
class Fault:
    """One way a replica's copy of ``V1`` can be damaged or hostile."""

    name: str
    plant: Callable[[Scene], Planted]
    kind: ProblemKind
    """What a scrub reports it as."""
    error: type[BlobrepError]
    """What reading ``V1`` from the damaged replica alone raises."""
    plumbing: bool = True
    """Whether a restore without a catalog can notice it (another version's whole manifest cannot)."""

    def __str__(self) -> str:
        return self.name


def _target(scene: Scene) -> tuple[str, Path]:
    digest = scene.published.v1_digests[0]
    return digest, chunk_file(scene.r1, digest)


def _other_chunk(scene: Scene) -> bytes:
    return chunk_file(scene.r1, scene.published.v1_digests[1]).read_bytes()


def _rewrite(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


def _chunk(change: Callable[[Scene, Path], None]) -> Callable[[Scene], Planted]:
    def plant(scene: Scene) -> Planted:
        digest, path = _target(scene)
        change(scene, path)
        return Planted(digest)

    return plant


def _chunk_fifo(scene: Scene) -> Planted:
    digest, path = _target(scene)
    path.unlink()
    os.mkfifo(path)
    return Planted(digest, fifo=path)


def _link_outside(path: Path, outside: Path, content: bytes, where: str) -> Planted:
    outside.parent.mkdir(parents=True, exist_ok=True)
    outside.write_bytes(content)
    path.unlink()
    path.symlink_to(outside)
    return Planted(where, outside=outside, outside_bytes=content)


def _chunk_link(same: bool) -> Callable[[Scene], Planted]:
    def plant(scene: Scene) -> Planted:
        digest, path = _target(scene)
        content = path.read_bytes() if same else _other_chunk(scene)
        return _link_outside(path, scene.outside / "chunk", content, digest)

    return plant


def _truncate(_: Scene, path: Path) -> None:
    _rewrite(path, path.read_bytes()[: path.stat().st_size // 2])


def _append(_: Scene, path: Path) -> None:
    with open(path, "ab") as out:
        out.write(b"trailing bytes after the frame")


def _swap_chunk(scene: Scene, path: Path) -> None:
    _rewrite(path, _other_chunk(scene))


def _empty(_: Scene, path: Path) -> None:
    _rewrite(path, b"")


def _directory(_: Scene, path: Path) -> None:
    path.unlink()
    path.mkdir()


def _sparse(_: Scene, path: Path) -> None:
    with open(path, "r+b") as out:
        out.truncate(SPARSE_SIZE)


CHUNK_FAULTS: Final = (
    Fault("chunk-missing", _chunk(lambda _, path: path.unlink()), "missing", ChunkMissingError),
    Fault("chunk-truncated", _chunk(_truncate), "corrupt", ChunkCorruptError),
    Fault("chunk-bit-flipped", _chunk(lambda _, path: flip_byte(path)), "corrupt", ChunkCorruptError),
    Fault("chunk-trailing-bytes", _chunk(_append), "corrupt", ChunkCorruptError),
    Fault("chunk-swapped", _chunk(_swap_chunk), "corrupt", ChunkCorruptError),
    Fault("chunk-empty", _chunk(_empty), "corrupt", ChunkCorruptError),
    Fault("chunk-directory", _chunk(_directory), "corrupt", ChunkCorruptError),
    Fault("chunk-fifo", _chunk_fifo, "corrupt", ChunkCorruptError),
    Fault("chunk-link-outside-right-bytes", _chunk_link(same=True), "corrupt", ChunkCorruptError),
    Fault("chunk-link-outside-other-bytes", _chunk_link(same=False), "corrupt", ChunkCorruptError),
    Fault("chunk-sparse-4gib", _chunk(_sparse), "corrupt", ChunkCorruptError),
)


def _manifest(change: Callable[[Scene, Path], None]) -> Callable[[Scene], Planted]:
    def plant(scene: Scene) -> Planted:
        path = manifest_file(scene.r1, V1)
        change(scene, path)
        return Planted(manifest_key(GALLERY, V1))

    return plant


def _edit_json(edit: Callable[[dict[str, Any]], None]) -> Callable[[Scene, Path], None]:
    """Rewrite the manifest, still well formed, with ``edit`` applied to its document."""

    def change(_: Scene, path: Path) -> None:
        document = json.loads(path.read_bytes())
        edit(document)
        _rewrite(path, json.dumps(document, separators=(",", ":")).encode() + b"\n")

    return change


def _data_entries(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The manifest's stored-chunk entries, the last entry of the list left out."""
    return [entry for entry in document["chunks"][:-1] if "digest" in entry]


def _reorder(document: dict[str, Any]) -> None:
    chunks = document["chunks"]
    first, second = (chunks.index(entry) for entry in _data_entries(document)[:2])
    assert chunks[first]["digest"] != chunks[second]["digest"]
    chunks[first], chunks[second] = chunks[second], chunks[first]


def _lie_digest(document: dict[str, Any]) -> None:
    digest = document["digest"]
    document["digest"] = digest[:-1] + ("0" if digest[-1] != "0" else "1")


def _lie_stored_length(document: dict[str, Any]) -> None:
    _data_entries(document)[0]["stored_length"] -= 1


def _lie_zero(document: dict[str, Any]) -> None:
    chunks = document["chunks"]
    index = chunks.index(_data_entries(document)[0])
    chunks[index] = {"zero": True, "length": chunks[index]["length"]}


def _swap_manifest(scene: Scene, path: Path) -> None:
    _rewrite(path, manifest_file(scene.r1, V2).read_bytes())


def _huge_claim(scene: Scene, path: Path) -> None:
    path.unlink()
    shutil.copyfile(scene.published.huge_claim, path)


def _version_link(scene: Scene) -> Planted:
    directory = manifest_file(scene.r1, V1).parent
    shutil.rmtree(directory)
    directory.symlink_to(str(V2.version))  # relative: the link stays inside the replica
    return Planted(manifest_key(GALLERY, V1))


def _manifest_fifo(scene: Scene) -> Planted:
    path = manifest_file(scene.r1, V1)
    path.unlink()
    os.mkfifo(path)
    return Planted(manifest_key(GALLERY, V1), fifo=path)


def _manifest_link(same: bool) -> Callable[[Scene], Planted]:
    def plant(scene: Scene) -> Planted:
        path = manifest_file(scene.r1, V1)
        content = path.read_bytes() if same else manifest_file(scene.r1, V2).read_bytes()
        return _link_outside(path, scene.outside / "manifest.json", content, manifest_key(GALLERY, V1))

    return plant


MANIFEST_FAULTS: Final = (
    Fault("manifest-missing", _manifest(lambda _, path: path.unlink()), "manifest", ManifestNotFoundError),
    Fault("manifest-swapped", _manifest(_swap_manifest), "manifest", ManifestError, plumbing=False),
    Fault("manifest-version-directory-link", _version_link, "manifest", ManifestError),
    Fault("manifest-reordered", _manifest(_edit_json(_reorder)), "manifest", ManifestError),
    Fault("manifest-lying-digest", _manifest(_edit_json(_lie_digest)), "manifest", ManifestError),
    Fault(
        "manifest-lying-stored-length", _manifest(_edit_json(_lie_stored_length)), "manifest", ManifestError
    ),
    Fault("manifest-lying-zero-chunk", _manifest(_edit_json(_lie_zero)), "manifest", ManifestError),
    # Parsing 1.9 million entries without a pin would take far more memory than the
    # document; only a reader bounded by the pin is asked to refuse it.
    Fault("manifest-huge-claim", _manifest(_huge_claim), "manifest", ManifestError, plumbing=False),
    Fault("manifest-sparse-4gib", _manifest(_sparse), "manifest", ManifestError),
    Fault("manifest-fifo", _manifest_fifo, "manifest", ManifestError),
    Fault("manifest-link-outside-right-bytes", _manifest_link(same=True), "manifest", ManifestError),
    Fault("manifest-link-outside-other-bytes", _manifest_link(same=False), "manifest", ManifestError),
)


# --- watching what the product does -----------------------------------------------------


@dataclass
class FifoWatch:
    """Notices whoever opens a planted FIFO for reading, and lets them go at once.

    A thread keeps trying to open the FIFO for writing without blocking, which succeeds only
    while some reader holds it open; it then closes it, so a reader blocked there sees end of
    file instead of hanging the test. ``readers`` counts the times one was caught.
    """

    path: Path | None
    readers: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> FifoWatch:
        if self.path is not None:
            self._thread = threading.Thread(target=self._watch, daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _watch(self) -> None:
        assert self.path is not None
        while not self._stop.wait(0.005):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
            except OSError:
                continue  # nobody reading (ENXIO), or the FIFO was replaced or removed
            try:
                if stat.S_ISFIFO(os.fstat(fd).st_mode):
                    self.readers += 1
            finally:
                os.close(fd)


@dataclass
class Peak:
    """The most memory Python allocated at once while traced, in bytes."""

    bytes: int = 0


@contextmanager
def traced_peak() -> Iterator[Peak]:
    """Trace allocations (every thread's) in the block; the peak is set on leaving it."""
    peak = Peak()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        yield peak
    finally:
        peak.bytes = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
