"""Local blob store and the bucket root: atomic writes, prefixes, no path escapes."""

from __future__ import annotations

import pytest

from loupe_common.blobs import BlobNotFound, LocalBlobStore
from loupe_common.settings import Settings
from loupe_common.buckets import BucketError, BucketRoot
from loupe_dataset.sources import SourceError, SourceReader


async def test_local_blob_store(tmp_path):
    store = LocalBlobStore(tmp_path)
    await store.put("a/b/c.bin", b"123")
    assert await store.get("a/b/c.bin") == b"123"
    assert await store.exists("a/b/c.bin")
    await store.put("a/b/d.bin", b"4")
    assert await store.delete_prefix("a/b") == 2
    assert not await store.exists("a/b/c.bin")
    with pytest.raises(BlobNotFound):
        await store.get("a/b/c.bin")
    for bad in ("../x", "/abs", "a//b", "a/./b", ""):
        with pytest.raises(ValueError):
            await store.put(bad, b"x")
    assert not [p for p in tmp_path.rglob(".tmp-*")]


def test_bucket_root_refuses_escapes(tmp_path):
    root = BucketRoot(tmp_path)
    (tmp_path / "b").mkdir()
    (tmp_path / "secret.txt").write_text("no")
    with pytest.raises(BucketError, match="escapes"):
        root.read("b", "../secret.txt", max_bytes=100)
    with pytest.raises(BucketError, match="not found"):
        root.read("b", "missing.png", max_bytes=100)
    root.write("b", "dir/x.png", b"data")
    assert root.read("b", "dir/x.png", max_bytes=100) == b"data"
    with pytest.raises(BucketError, match="limit"):
        root.read("b", "dir/x.png", max_bytes=2)


async def test_http_refs_to_private_addresses_are_refused(tmp_path):
    reader = SourceReader(Settings(_env_file=None, data_dir=tmp_path))
    for url in ("http://127.0.0.1:1/x.png", "http://localhost/x.png", "http://169.254.169.254/latest",
                "http://10.0.0.1/x.png"):
        with pytest.raises(SourceError, match="non-public"):
            await reader.read(url)
    with pytest.raises(SourceError, match="disabled"):
        await reader.read(f"file://{tmp_path}/x.png")
    with pytest.raises(SourceError, match="unsupported"):
        await reader.read("ftp://host/x.png")


async def test_file_refs_read_only_under_their_roots_and_say_nothing_of_the_rest(tmp_path):
    from helpers import png_bytes

    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    (root / "ok.png").write_bytes(png_bytes(seed=1))
    (elsewhere / "secret.png").write_bytes(png_bytes(seed=2))
    (root / "link.png").symlink_to(elsewhere / "secret.png")
    reader = SourceReader(Settings(_env_file=None, data_dir=tmp_path, allow_file_refs=True, file_ref_roots=str(root)))
    assert await reader.read(f"file://{root}/ok.png") == png_bytes(seed=1)
    answers = []
    for ref in (f"file://{elsewhere}/secret.png", f"file://{elsewhere}/missing.png", "file:///etc/hostname",
                f"file://{root}/../elsewhere/secret.png", f"file://{root}/link.png"):
        with pytest.raises(SourceError, match="outside the folders") as refused:
            await reader.read(ref)
        answers.append(str(refused.value).split(" is outside")[1])
    assert len(set(answers)) == 1  # an existing file and a missing one read the same
    with pytest.raises(SourceError, match="not found"):
        await reader.read(f"file://{root}/missing.png")  # inside a root, the usual words
    nowhere = SourceReader(Settings(_env_file=None, data_dir=tmp_path, allow_file_refs=True))
    with pytest.raises(SourceError, match="outside the folders"):
        await nowhere.read(f"file://{root}/ok.png")
