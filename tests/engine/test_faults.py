"""A replica that fails during publish: one plain error, and no manifest anywhere."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from blobrep.errors import StorageError, StorageFullError
from blobrep.service import BlobService, LocalStore, Store
from blobrep.storage import Fault, FaultyStore
from tests.engine.helpers import GALLERY, NAME, SMALL_CHUNKS, manifest_path, same_file


def _replicas(tmp_path: Path) -> tuple[LocalStore, LocalStore]:
    return (
        LocalStore(tmp_path / "replica-1", name="replica-1", create=True),
        LocalStore(tmp_path / "replica-2", name="replica-2", create=True),
    )


#: Where puts go, and the put after which a fault leaves some done: chunk objects, or packs
#: of 1 MiB (an 8 MiB image makes several).
LAYOUTS = {"lone": (None, "/chunks/", 5), "packs": (1 << 20, "/packs/", 2)}


@pytest.mark.parametrize(
    ("make_fault", "expected"),
    [
        pytest.param(
            lambda key, after: Fault("put", "error", key, after=after), StorageError, id="put-error"
        ),
        pytest.param(
            lambda key, after: Fault("put", "full", key, after=after), StorageFullError, id="put-full"
        ),
        pytest.param(lambda key, _: Fault("put", "error", key), StorageError, id="first-put-error"),
        pytest.param(lambda *_: Fault("sync", "error"), StorageError, id="sync-error"),
    ],
)
@pytest.mark.parametrize("faulty_position", [0, 1], ids=["first-replica-fails", "second-replica-fails"])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
async def test_a_failing_replica_fails_the_publish_without_a_manifest(
    service: BlobService,
    tmp_path: Path,
    image_8m: Path,
    out_dir: Path,
    make_fault: Callable[[str, int], Fault],
    expected: type[StorageError],
    faulty_position: int,
    layout: str,
) -> None:
    pack_size, key, after = LAYOUTS[layout]
    fault = make_fault(key, after)
    replicas = _replicas(tmp_path)
    stores: list[Store] = list(replicas)
    stores[faulty_position] = FaultyStore(replicas[faulty_position], [fault])

    with pytest.raises(StorageError) as caught:
        await service.publish(image_8m, stores, GALLERY, NAME, chunking=SMALL_CHUNKS, pack_size=pack_size)

    # Exactly the injected error, not an ExceptionGroup or a wrapper around it.
    assert type(caught.value) is expected
    assert replicas[faulty_position].name in str(caught.value)
    assert fault.fired >= 1  # concurrent writers may each have hit it before cancellation
    for replica in replicas:
        assert not manifest_path(replica).exists()
        assert [key async for key in replica.list(f"galleries/{GALLERY}/images/")] == []

    # Once the replica is healthy again, the same publish completes and restores exactly.
    retried = await service.publish(
        image_8m, list(replicas), GALLERY, NAME, chunking=SMALL_CHUNKS, pack_size=pack_size
    )
    assert retried.committed
    for replica in replicas:
        output = out_dir / f"{replica.name}.raw"
        await service.restore(replica, GALLERY, NAME, output)
        assert same_file(image_8m, output)


async def test_a_failing_chunk_read_fails_the_restore_with_the_replica_named(
    service: BlobService, store: LocalStore, image_8m: Path, out_dir: Path
) -> None:
    await service.publish(image_8m, [store], GALLERY, NAME, chunking=SMALL_CHUNKS)
    # The fourth chunk read, from one of the blob's packs.
    faulty = FaultyStore(store, [Fault("get", "error", key_contains="/packs/", after=3, times=1)])

    with pytest.raises(StorageError) as caught:
        await service.restore(faulty, GALLERY, NAME, out_dir / "restored.raw")

    assert type(caught.value) is StorageError
    assert "replica-1" in str(caught.value)
    assert list(out_dir.iterdir()) == []
