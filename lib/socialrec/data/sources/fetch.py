"""``socialrec datasets fetch NAME``: download a public dataset with checksum checks.

For users with internet access; nothing else in socialrec touches the network, and the
tests use ``file://`` archives. MovieLens and HetRec archives come from GroupLens; each
extracted data file is checked against the SHA-256 pinned here (taken from the copies
this project is tested on), and for the larger MovieLens releases (1M to 32M) the archive
against the MD5 GroupLens publishes beside it (pinned here too). Stack Exchange dumps come from the Internet Archive, whose
file list publishes an MD5 per archive; the download is checked against it, then
extracted with ``7z`` (7-Zip must be installed for that step).

The augmented text files that this project's test copies carry (MovieLens plots.json,
overviews.csv) are not part of the official archives; the adapters use them when present.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import subprocess
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Archive:
    url: str
    folder: str  # the folder inside the zip that holds the files ("" for the top level)
    sha256: dict[str, str] = field(default_factory=dict)  # data file -> SHA-256
    terms: str = ""
    # The archive's MD5 as GroupLens publishes it (``<url>.md5``), pinned here: the
    # download must match both the pin and the published file.
    md5: str | None = None


GROUPLENS = "https://files.grouplens.org/datasets"
GROUPLENS_TERMS = "GroupLens: research use; no redistribution or commercial use without permission."
ARCHIVES: dict[str, Archive] = {
    "movielens-100k": Archive(
        f"{GROUPLENS}/movielens/ml-100k.zip", "ml-100k",
        {
            "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
            "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
            "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
            "u.genre": "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
        },
        GROUPLENS_TERMS,
    ),
    "movielens-latest": Archive(
        f"{GROUPLENS}/movielens/ml-latest-small.zip", "ml-latest-small",
        {
            "ratings.csv": "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646",
            "movies.csv": "5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07",
            "tags.csv": "92a9f8bb7916dceef6151209845788c3643f794dfa79d1feaec7121b5960399d",
            "links.csv": "97ad18e4e56a09363c65676b6cb3482ce3e2cea2372a24620c1599c843325f31",
        },
        GROUPLENS_TERMS,
    ),
    "lastfm-hetrec": Archive(
        f"{GROUPLENS}/hetrec2011/hetrec2011-lastfm-2k.zip", "",
        {
            "artists.dat": "c173881362c6b28551368fecb3c0be5a6a30a6cd859e1f5775413dfe46d48648",
            "tags.dat": "c815d7216101fd0ba9b9c59fa2a011998d2fd076e0064d281ec4153d95ae8095",
            "user_artists.dat": "254272fa721c3935e8be286d28c051b206844307128698ab4eaa41d483379416",
            "user_friends.dat": "0360883a3557776e04fdebda851f2e5dd23e796cad7059b968acdebd528d13fa",
            "user_taggedartists.dat": "c4a9ffae9ab47a9f9b2f0678ab1f7e5c1db4ca818837d8cddd1f5699c5bbf048",
        },
        "HetRec 2011 / Last.fm: non-commercial use only.",
    ),
}
# The larger MovieLens releases (the presets conf/datasets/movielens-*.yaml): archive MD5s
# as published beside each archive (<url>.md5).
for _name, _folder, _md5 in (("1m", "ml-1m", "c4d9eecfca2ab87c1945afe126590906"),
                             ("10m", "ml-10M100K", "ce571fd55effeba0271552578f2648bd"),
                             ("20m", "ml-20m", "cd245b17a1ae2cc31bb14903e1204af3"),
                             ("25m", "ml-25m", "6b51fb2759a8657d3bfcbfc42b592ada"),
                             ("32m", "ml-32m", "d472be332d4daa821edc399621853b57")):
    ARCHIVES[f"movielens-{_name}"] = Archive(f"{GROUPLENS}/movielens/ml-{_name}.zip", _folder, terms=GROUPLENS_TERMS,
                                             md5=_md5)
STACKEXCHANGE_ITEMS = "https://archive.org/download/stackexchange"
STACKEXCHANGE_TERMS = "CC BY-SA: attribute the site and the authors."


class FetchError(RuntimeError):
    """A download failed or a checksum did not match; the message says which file."""


def _digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download(url: str, target: Path) -> None:
    log.info("fetch: %s", url)
    try:
        with urllib.request.urlopen(url, timeout=120) as resp, open(target, "wb") as out:  # noqa: S310 - fixed URLs
            shutil.copyfileobj(resp, out)
    except OSError as exc:
        raise FetchError(f"download of {url} failed: {exc}") from exc


def fetch(name: str, dest: str | Path, *, archive: Archive | None = None) -> Path:
    """Download and verify dataset ``name`` into ``dest``; return the folder with its files."""
    dest = Path(dest).expanduser()
    if name.startswith("stackexchange-"):
        return _fetch_stackexchange(name.split("-", 1)[1], dest)
    spec = archive or ARCHIVES.get(name)
    if spec is None:
        known = ", ".join([*ARCHIVES, "stackexchange-<site> (e.g. stackexchange-beer)"])
        raise FetchError(f"unknown dataset {name!r}; known: {known}")
    target = dest / name
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        zpath = Path(tmp) / "archive.zip"
        _download(spec.url, zpath)
        if spec.md5:
            _check_md5(spec, zpath, Path(tmp) / "archive.zip.md5")
        try:
            with zipfile.ZipFile(zpath) as zf:
                members = {Path(m).name: m for m in zf.namelist() if not m.endswith("/")
                           and str(Path(m).parent).strip(".") == spec.folder}
                for fname in spec.sha256:
                    if fname not in members:
                        raise FetchError(f"{spec.url}: the archive has no {spec.folder}/{fname}")
                for fname, member in members.items():
                    with zf.open(member) as src, open(target / fname, "wb") as out:
                        shutil.copyfileobj(src, out)
        except zipfile.BadZipFile as exc:
            raise FetchError(f"{spec.url}: not a zip archive ({exc})") from exc
    for fname, expected in spec.sha256.items():
        actual = _digest(target / fname, "sha256")
        if actual != expected:
            raise FetchError(f"{target / fname}: SHA-256 {actual} does not match the pinned {expected}")
    log.info("fetch: %s verified in %s (%s)", name, target, spec.terms)
    return target


def _check_md5(spec: Archive, zpath: Path, sidecar: Path) -> None:
    """The archive's MD5 against the pinned value and the one published beside it."""
    _download(f"{spec.url}.md5", sidecar)
    published = re.search(r"\b[0-9a-f]{32}\b", sidecar.read_text(errors="replace"))
    if published is None or published.group() != spec.md5:
        raise FetchError(f"{spec.url}.md5: publishes {published.group() if published else 'no MD5'}, "
                         f"not the pinned {spec.md5}: the archive changed; check the release before using it")
    actual = _digest(zpath, "md5")
    if actual != spec.md5:
        raise FetchError(f"{spec.url}: MD5 {actual} does not match the published {spec.md5}")


def _fetch_stackexchange(site: str, dest: Path) -> Path:
    archive_name = f"{site}.stackexchange.com.7z"
    target = dest / f"stackexchange-{site}"
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "files.xml"
        _download(f"{STACKEXCHANGE_ITEMS}/stackexchange_files.xml", listing)
        md5 = None
        for node in ElementTree.parse(listing).getroot().iter("file"):
            if node.get("name") == archive_name:
                md5 = (node.findtext("md5") or "").strip()
        if not md5:
            raise FetchError(f"{archive_name}: not listed in the Internet Archive's stackexchange item")
        path = Path(tmp) / archive_name
        _download(f"{STACKEXCHANGE_ITEMS}/{archive_name}", path)
        actual = _digest(path, "md5")
        if actual != md5:
            raise FetchError(f"{archive_name}: MD5 {actual} does not match the published {md5}")
        seven = shutil.which("7z") or shutil.which("7za")
        if seven is None:
            kept = dest / archive_name
            shutil.move(str(path), kept)
            raise FetchError(f"{kept} is verified; extract it into {target} with 7-Zip (7z x), which is not installed")
        subprocess.run([seven, "x", "-y", f"-o{target}", str(path)], check=True, capture_output=True)
    log.info("fetch: stackexchange-%s verified and extracted in %s (%s)", site, target, STACKEXCHANGE_TERMS)
    return target
