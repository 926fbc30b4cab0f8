"""Scrub of replicas that store chunks in packs: a pack is checked whole (size and digest) and
counted as one object, a bad one is reported once with its key and replica, and repair puts
the exact pack back (a whole verified copy from a sibling or a donor, else the damaged copy
patched with verified frames), or writes nothing and says why."""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from blobrep.core.chunking import ChunkingSpec
from blobrep.core.codec import digest_of, encode_chunk, new_compressor
from blobrep.core.gallery import BlobInfo
from blobrep.core.keys import chunk_key, manifest_key, pack_key
from blobrep.core.manifest import ChunkRef, Manifest, build_manifest, encode_manifest
from blobrep.core.names import BlobName
from blobrep.core.packs import PackRef
from blobrep.core.pins import ManifestPin
from blobrep.engine.restore import restore
from blobrep.engine.scrub import Expected, ScrubReport, scrub_region
from blobrep.engine.verify import verify
from blobrep.storage import LocalStore, Store
from tests.engine.helpers import GALLERY, tree
from tests.engine.replication_helpers import region_stores
from tests.engine.scrub_helpers import LeaseWatchingStore, truncate

BLOB = BlobName.parse("img/versions/1.0.0")
KEY = manifest_key(GALLERY, BLOB)
CHUNK = 16 * 1024
#: Chunks of the blob: data chunks, a zero chunk, and the last few stored on their own.
CHUNKS = 24
ZERO_AT = 9
LONE = 4
#: Frames in each pack.
PER_PACK = 4
R1, R2, R3 = "eastus/replica-1", "eastus/replica-2", "eastus/replica-3"


@dataclass(frozen=True)
class Blob:
    """A blob stored as a publish that writes packs leaves it: its bytes and how it is stored."""

    data: bytes
    manifest: Manifest
    document: bytes
    frames: dict[str, bytes]
    lone: list[str]
    """Chunks stored as their own objects."""

    @property
    def packs(self) -> list[PackRef]:
        return list(self.manifest.packs)

    def in_pack(self, pack: PackRef) -> list[ChunkRef]:
        """The chunks stored in ``pack``, by offset."""
        placed = [chunk for chunk in self.manifest.stored_digests().values() if chunk.pack == pack]
        return sorted(placed, key=lambda chunk: chunk.offset)

    @property
    def info(self) -> BlobInfo:
        """What a catalog pins of the blob."""
        stored = self.manifest.stored_bytes
        pin = ManifestPin.of(self.document)
        return BlobInfo(self.manifest.size, self.manifest.digest, stored, len(self.manifest.chunks), pin)


def make_blob() -> Blob:
    """A blob of fixed 16 KiB chunks, most in packs of a few frames, the last few alone."""
    rng = random.Random(42)
    text = b"".join(b"unit %d listening on %d\n" % (i, rng.randrange(65536)) for i in range(2000))
    pieces = [
        bytes(CHUNK) if index == ZERO_AT else rng.randbytes(CHUNK // 2) + text[index * 97 :][: CHUNK // 2]
        for index in range(CHUNKS)
    ]
    data = b"".join(pieces)
    compressor = new_compressor(1)
    frames = {digest_of(piece): encode_chunk(piece, compressor) for piece in pieces if any(piece)}
    lone = [digest_of(piece) for piece in pieces[-LONE:]]
    packed = [digest for digest in frames if digest not in lone]
    places: dict[str, tuple[PackRef, int]] = {}
    packs: list[PackRef] = []
    for start in range(0, len(packed), PER_PACK):  # a few frames back to back in each pack
        group = packed[start : start + PER_PACK]
        content = b"".join(frames[digest] for digest in group)
        packs.append(PackRef(digest_of(content), len(content)))
        offsets = itertools.accumulate((len(frames[digest]) for digest in group), initial=0)
        places.update({digest: (packs[-1], offset) for digest, offset in zip(group, offsets, strict=False)})
    chunks = []
    for piece in pieces:
        digest = digest_of(piece)
        if not any(piece):
            chunks.append(ChunkRef(None, len(piece), 0))
        elif digest in places:
            chunks.append(ChunkRef(digest, len(piece), len(frames[digest]), *places[digest]))
        else:
            chunks.append(ChunkRef(digest, len(piece), len(frames[digest])))
    manifest = build_manifest(
        size=len(data),
        digest=digest_of(data),
        chunking=ChunkingSpec.fixed(CHUNK),
        level=1,
        chunks=chunks,
        packs=packs,
    )
    blob = Blob(data, manifest, encode_manifest(manifest), frames, lone)
    assert len(blob.packs) >= 4 and all(len(blob.in_pack(pack)) >= 2 for pack in blob.packs)
    return blob


async def store_blob(blob: Blob, stores: list[LocalStore]) -> None:
    for store in stores:
        for pack in blob.packs:
            data = b"".join(blob.frames[chunk.digest or ""] for chunk in blob.in_pack(pack))
            assert digest_of(data) == pack.digest
            await store.put(pack_key(GALLERY, pack.digest), data)
        for digest in blob.lone:
            await store.put(chunk_key(GALLERY, digest), blob.frames[digest])
        await store.sync()
        await store.put(KEY, blob.document)
        await store.sync()


@pytest.fixture(scope="module")
def blob() -> Blob:
    return make_blob()


@pytest.fixture
async def region(tmp_path: Path, blob: Blob) -> list[LocalStore]:
    """Three replicas of ``eastus``, each holding the blob."""
    stores = region_stores(tmp_path, "eastus", 3)
    await store_blob(blob, stores)
    return stores


def pack_file(store: LocalStore, pack: PackRef) -> Path:
    return store.root / pack_key(GALLERY, pack.digest)


def original(blob: Blob, pack: PackRef) -> bytes:
    return b"".join(blob.frames[chunk.digest or ""] for chunk in blob.in_pack(pack))


def rot_frame(store: LocalStore, blob: Blob, pack: PackRef, which: int) -> None:
    """Flip one byte in the middle of the ``which``-th frame of ``pack`` (bit rot)."""
    chunk = blob.in_pack(pack)[which]
    path = pack_file(store, pack)
    data = bytearray(path.read_bytes())
    data[chunk.offset + chunk.stored_length // 2] ^= 0x40
    path.write_bytes(bytes(data))


def data_files(store: LocalStore) -> dict[str, tuple[int, int, int]]:
    """Every file of the replica but its leases (a repair run takes and drops one)."""
    return {path: entry for path, entry in tree(store.root).items() if "/leases/" not in path}


def found(report: ScrubReport) -> list[tuple[str, str, str]]:
    return [(problem.replica, problem.kind, problem.key_or_digest) for problem in report.problems]


async def assert_serves_alone(store: LocalStore, blob: Blob, out: Path) -> None:
    """The replica alone verifies and restores the exact blob."""
    checked = await verify(store, GALLERY, BLOB)
    assert checked.ok, checked.problems
    await restore(store, GALLERY, BLOB, out)
    assert out.read_bytes() == blob.data


async def test_a_clean_packed_region_scrubs_clean_and_counts_each_pack_once(
    region: list[LocalStore], blob: Blob
) -> None:
    before = [tree(store.root) for store in region]
    seen: list[tuple[int, int]] = []

    report = await scrub_region(region, GALLERY, repair=True, progress=lambda *pair: seen.append(pair))

    assert report.ok and report.problems == () and (report.repaired, report.unrepairable) == (0, 0)
    packed = sum(len(blob.in_pack(pack)) for pack in blob.packs)
    assert packed == len(blob.frames) - LONE
    for summary in report.replicas:
        assert summary.manifests == 1
        assert (summary.packs_checked, summary.packed_chunks) == (len(blob.packs), packed)
        assert summary.pack_bytes_checked == sum(pack.size for pack in blob.packs)
        # Every chunk counts as checked, alone or through its pack, as in an unpacked replica.
        assert summary.chunks_checked == len(blob.frames)
    plain = sum(chunk.length for chunk in blob.manifest.stored_digests().values())
    assert all(summary.bytes_checked == plain for summary in report.replicas)
    assert seen[0] == (0, 3 * plain) and seen[-1] == (3 * plain, 3 * plain)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert [tree(store.root) for store in region] == before


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x01
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def _append(path: Path) -> None:
    with open(path, "ab") as out:
        out.write(b"more")


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


DAMAGE: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "bit flip": (_flip, "pack-corrupt", "bytes hash to"),
    "truncated": (_truncate, "pack-size", "truncated"),
    "appended": (_append, "pack-size", "is longer than"),
    "missing": (Path.unlink, "pack-missing", "is missing in replica eastus/replica-1"),
    "fifo": (_fifo, "pack-corrupt", "is a FIFO, not a regular file"),
    "directory": (_directory, "pack-corrupt", "is a directory, not a regular file"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
async def test_a_damaged_pack_is_reported_once_and_replaced_byte_for_byte_from_a_sibling(
    region: list[LocalStore], blob: Blob, damage: str, tmp_path: Path
) -> None:
    harm, kind, words = DAMAGE[damage]
    one, two, _ = region
    pack = blob.packs[1]
    key = pack_key(GALLERY, pack.digest)
    harm(pack_file(one, pack))
    before = [tree(store.root) for store in region]

    checked = await scrub_region(region, GALLERY)

    # One problem for the whole pack, however many chunks it holds; nothing written.
    assert found(checked) == [(R1, kind, key)]
    (problem,) = checked.problems
    assert words in problem.detail and key in problem.detail and not problem.repaired
    assert f"it holds {len(blob.in_pack(pack))} chunk(s)" in problem.detail or kind != "pack-missing"
    assert [summary.problems for summary in checked.replicas] == [1, 0, 0]
    assert checked.damaged_blobs == (KEY,)
    assert [tree(store.root) for store in region] == before

    repaired = await scrub_region(region, GALLERY, repair=True)

    assert repaired.ok and (repaired.repaired, repaired.unrepairable) == (1, 0)
    assert repaired.problems[0].detail.endswith(f"; repaired from a verified copy in {R2}")
    assert repaired.damaged_blobs == ()
    assert pack_file(one, pack).read_bytes() == pack_file(two, pack).read_bytes() == original(blob, pack)
    assert (await scrub_region(region, GALLERY)).problems == ()
    await assert_serves_alone(one, blob, tmp_path / "restored.img")


async def test_rot_in_different_frames_of_every_copy_is_patched_with_each_others_frames(
    region: list[LocalStore], blob: Blob, tmp_path: Path
) -> None:
    one, two, three = region
    pack = blob.packs[0]
    rot_frame(one, blob, pack, 0)
    rot_frame(two, blob, pack, 1)
    pack_file(three, pack).unlink()

    report = await scrub_region(region, GALLERY, repair=True)

    assert found(report) == [
        (R1, "pack-corrupt", pack_key(GALLERY, pack.digest)),
        (R2, "pack-corrupt", pack_key(GALLERY, pack.digest)),
        (R3, "pack-missing", pack_key(GALLERY, pack.digest)),
    ]
    first, second, missing = report.problems
    assert first.detail.endswith(
        f"; repaired by patching its 1 damaged frame(s) with verified copies from {R2}"
    )
    assert second.detail.endswith(
        f"; repaired by patching its 1 damaged frame(s) with verified copies from {R1}"
    )
    # No copy was whole when the third replica was mended, and it had nothing to patch.
    assert not missing.repaired and "no replica of the region holds it whole" in missing.detail
    for store in (one, two):
        assert pack_file(store, pack).read_bytes() == original(blob, pack)
    assert KEY in report.damaged_blobs

    # The next scrub finds whole copies to take it from.
    again = await scrub_region(region, GALLERY, repair=True)
    assert found(again) == [(R3, "pack-missing", pack_key(GALLERY, pack.digest))] and again.ok
    assert (await scrub_region(region, GALLERY)).problems == ()
    for store in region:
        await assert_serves_alone(store, blob, tmp_path / f"{store.root.name}.img")


async def test_a_donor_of_another_region_gives_a_whole_pack_or_a_frame_and_is_never_written(
    tmp_path: Path, blob: Blob
) -> None:
    (only,) = region_stores(tmp_path, "eastus", 1)
    whole, rotten = region_stores(tmp_path, "westus", 2)
    await store_blob(blob, [only, whole, rotten])
    lost, rotted = blob.packs[0], blob.packs[2]
    pack_file(only, lost).unlink()
    pack_file(whole, rotted).unlink()
    rot_frame(only, blob, rotted, 0)
    rot_frame(rotten, blob, rotted, 1)
    donors_before = [tree(store.root) for store in (whole, rotten)]

    report = await scrub_region([only], GALLERY, donors=[whole, rotten], repair=True)

    assert report.ok, report.problems
    details = {problem.key_or_digest: problem.detail for problem in report.problems}
    assert details[pack_key(GALLERY, lost.digest)].endswith(
        "; repaired from a verified copy in westus/replica-1"
    )
    assert details[pack_key(GALLERY, rotted.digest)].endswith(
        "; repaired by patching its 1 damaged frame(s) with verified copies from westus/replica-2"
    )
    assert [tree(store.root) for store in (whole, rotten)] == donors_before
    await assert_serves_alone(only, blob, tmp_path / "restored.img")


async def test_a_pack_no_copy_can_restore_is_unrepairable_and_nothing_is_written(
    region: list[LocalStore], blob: Blob
) -> None:
    rotted, lost = blob.packs[0], blob.packs[3]
    for store in region:
        rot_frame(store, blob, rotted, 1)
        pack_file(store, lost).unlink()
    before = [data_files(store) for store in region]

    report = await scrub_region(region, GALLERY, repair=True)

    assert not report.ok and (report.repaired, report.unrepairable) == (0, 6)
    assert sorted(found(report)) == sorted(
        (store.name, kind, pack_key(GALLERY, pack.digest))
        for store in region
        for kind, pack in (("pack-corrupt", rotted), ("pack-missing", lost))
    )
    for problem in report.problems:
        assert "not repaired: no replica of the region holds it whole" in problem.detail
        assert "source region" in problem.detail
        if problem.kind == "pack-corrupt":
            assert "1 damaged frame(s) in it have no verified copy anywhere" in problem.detail
    assert report.damaged_blobs == (KEY,)
    before = [{path: entry for path, entry in files.items() if "/leases/" not in path} for files in before]
    after = [
        {path: entry for path, entry in tree(store.root).items() if "/leases/" not in path}
        for store in region
    ]
    assert after == before


async def test_a_stand_in_manifest_is_written_only_after_the_packs_it_names_are_whole(
    region: list[LocalStore], blob: Blob, tmp_path: Path
) -> None:
    one, two, three = region
    truncate(two.root / KEY)
    torn = (two.root / KEY).read_bytes()
    lost, mended = blob.packs[0], blob.packs[1]
    for store in region:
        pack_file(store, lost).unlink()
    pack_file(two, mended).unlink()
    expected = {KEY: Expected(blob.info, 3)}

    stuck = await scrub_region(region, GALLERY, expected=expected, repair=True)

    (manifest,) = [problem for problem in stuck.problems if problem.kind == "manifest"]
    assert manifest.replica == R2 and not manifest.repaired
    assert "chunks it names are still bad in this replica" in manifest.detail
    assert (two.root / KEY).read_bytes() == torn
    assert pack_file(two, mended).read_bytes() == original(blob, mended)

    for store in (one, three):
        await store.put(pack_key(GALLERY, lost.digest), original(blob, lost))
    repaired = await scrub_region(region, GALLERY, expected=expected, repair=True)

    assert repaired.ok and sorted(found(repaired)) == [
        (R2, "manifest", KEY),
        (R2, "pack-missing", pack_key(GALLERY, lost.digest)),
    ]
    assert (two.root / KEY).read_bytes() == blob.document
    await assert_serves_alone(two, blob, tmp_path / "restored.img")


async def test_a_bad_lone_chunk_and_a_bad_pack_are_repaired_together_under_a_shared_lease(
    region: list[LocalStore], blob: Blob, tmp_path: Path
) -> None:
    one, two, three = region
    pack, digest = blob.packs[2], blob.lone[0]
    (one.root / chunk_key(GALLERY, digest)).unlink()
    _flip(pack_file(one, pack))
    watched = LeaseWatchingStore(one)
    stores: list[Store] = [watched, two, three]

    report = await scrub_region(stores, GALLERY, repair=True)

    assert found(report) == [(R1, "missing", digest), (R1, "pack-corrupt", pack_key(GALLERY, pack.digest))]
    assert report.ok and report.repaired == 2
    assert report.replicas[0].problems == 2
    assert sorted(key for key, _ in watched.seen) == sorted(
        [chunk_key(GALLERY, digest), pack_key(GALLERY, pack.digest)]
    )
    for _, leases in watched.seen:
        assert [(lease.exclusive, lease.holder) for lease in leases] == [
            (False, f"scrub repair of {GALLERY}")
        ]
    await assert_serves_alone(one, blob, tmp_path / "restored.img")
