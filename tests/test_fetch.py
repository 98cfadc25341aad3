"""Dataset download with checksum verification, exercised on local file:// archives
(the tests never use the network)."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from socialrec.data.sources.fetch import Archive, FetchError, fetch


def _archive(tmp_path, files: dict[str, bytes], folder="ml-test"):
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(f"{folder}/{name}", data)
    return path


def test_fetch_extracts_and_verifies(tmp_path):
    data = b"1\t2\t5\t881250949\n"
    z = _archive(tmp_path, {"u.data": data, "README": b"readme"})
    spec = Archive(z.as_uri(), "ml-test", {"u.data": hashlib.sha256(data).hexdigest()})
    folder = fetch("movielens-100k", tmp_path / "out", archive=spec)
    assert (folder / "u.data").read_bytes() == data and (folder / "README").read_bytes() == b"readme"


def test_fetch_rejects_a_wrong_checksum_naming_the_file(tmp_path):
    z = _archive(tmp_path, {"u.data": b"tampered\n"})
    spec = Archive(z.as_uri(), "ml-test", {"u.data": "0" * 64})
    with pytest.raises(FetchError, match=r"u\.data: SHA-256 [0-9a-f]{64} does not match the pinned 0{64}"):
        fetch("movielens-100k", tmp_path / "out", archive=spec)


def test_fetch_errors(tmp_path):
    z = _archive(tmp_path, {"other.txt": b"x"})
    with pytest.raises(FetchError, match="the archive has no ml-test/u.data"):
        fetch("movielens-100k", tmp_path / "out", archive=Archive(z.as_uri(), "ml-test", {"u.data": "0" * 64}))
    with pytest.raises(FetchError, match="download of .* failed"):
        fetch("movielens-100k", tmp_path / "out", archive=Archive((tmp_path / "none.zip").as_uri(), "x", {}))
    with pytest.raises(FetchError, match="unknown dataset 'netflix'"):
        fetch("netflix", tmp_path)


def test_pinned_checksums_match_the_shared_copies():
    from socialrec.data.sources.fetch import ARCHIVES

    from .conftest import SHARED_DATA

    folders = {"movielens-100k": "movielens-100k", "movielens-latest": "movielens-latest-small",
               "lastfm-hetrec": "lastfm-hetrec-2k"}
    # The larger MovieLens releases (not in ../shared/data): archive MD5s only.
    assert {name for name, spec in ARCHIVES.items() if spec.md5 and not spec.sha256} == set(ARCHIVES) - set(folders)
    for name in folders:
        spec = ARCHIVES[name]
        root = SHARED_DATA / folders[name]
        if not root.is_dir():
            pytest.skip(f"{root} not present")
        for fname, digest in spec.sha256.items():
            assert hashlib.sha256((root / fname).read_bytes()).hexdigest() == digest, fname


def test_fetch_checks_the_published_md5(tmp_path):
    """The MovieLens 1M-32M archives: the download's MD5 must equal the pinned one and the
    one published beside the archive (``<url>.md5``)."""
    z = _archive(tmp_path, {"ratings.dat": b"1::2::5::978300760\n"}, folder="ml-1m")
    md5 = hashlib.md5(z.read_bytes()).hexdigest()
    (tmp_path / "a.zip.md5").write_text(f"MD5 (a.zip) = {md5}\n")
    folder = fetch("movielens-1m", tmp_path / "out", archive=Archive(z.as_uri(), "ml-1m", md5=md5))
    assert (folder / "ratings.dat").read_bytes() == b"1::2::5::978300760\n"
    with pytest.raises(FetchError, match=r"a\.zip: MD5 [0-9a-f]{32} does not match the published"):
        (tmp_path / "a.zip.md5").write_text("0" * 32 + "  a.zip\n")
        fetch("movielens-1m", tmp_path / "o2", archive=Archive(z.as_uri(), "ml-1m", md5="0" * 32))
    with pytest.raises(FetchError, match=r"a\.zip\.md5: publishes 0{32}, not the pinned"):
        fetch("movielens-1m", tmp_path / "o3", archive=Archive(z.as_uri(), "ml-1m", md5=md5))
