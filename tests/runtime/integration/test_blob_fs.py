from pathlib import Path

from ocr_runtime.adapters.blob_fs import FilesystemBlobStore


async def test_filesystem_blobs_round_trip(tmp_path: Path) -> None:
    blobs = FilesystemBlobStore(tmp_path / "blobs")
    first, second = await blobs.put(b"one"), await blobs.put(b"")
    assert await blobs.get_many([first, second, "a" * 32]) == {first: b"one", second: b""}
    await blobs.delete_many([first, "a" * 32])
    assert await blobs.get_many([first, second]) == {second: b""}


async def test_ids_cannot_escape_the_root(tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(b"no")
    blobs = FilesystemBlobStore(tmp_path / "blobs")
    assert await blobs.get_many(["../secret", "/etc/passwd"]) == {}
