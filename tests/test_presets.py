"""The named dataset presets (conf/datasets/<name>.yaml): each reads small files written
here in its dataset's published layout, with the counts, derived users/items and rejects
checked; and the files adapter against the real MovieLens-100K where ../shared/data has it."""

from __future__ import annotations

import json

import pytest

from socialrec.core.config import CONF_DIR, load_config
from socialrec.data.ingest import validate_dataset
from socialrec.data.sources import load_raw

from .conftest import SHARED_DATA


def _ingest(spark, preset: str, path, *more):
    cfg = load_config([CONF_DIR / "base.yaml", CONF_DIR / "datasets" / f"{preset}.yaml"],
                      [f"dataset.path={path}", *more])
    out = validate_dataset(load_raw(spark, cfg.dataset), cfg.dataset)
    return out, {(r.table, r.source): (r.read, r.accepted, r.rejected) for r in out.stats.collect()}


def _folder(root, name: str, files: dict[str, str]):
    """A dataset folder ``root/name`` holding ``files`` (file name -> text)."""
    folder = root / name
    folder.mkdir()
    for fname, text in files.items():
        (folder / fname).write_text(text)
    return folder


def _reasons(out):
    return sorted((r.table, r.row, r.reason) for r in out.rejects.collect())


def test_movielens_1m_dat_files(spark, tmp_path):
    (tmp_path / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n"
                                          "2::9999::4::978298413\n3::661::x::978298413\n")
    (tmp_path / "movies.dat").write_bytes("1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
                                          "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
                                          "2::Am\u00e9lie \"Le fabuleux\" (2001)::Comedy|Romance\n".encode("latin-1"))
    out, files = _ingest(spark, "movielens-1m", tmp_path)
    assert files[("interactions", "ratings.dat")] == (5, 3, 2) and files[("items", "movies.dat")] == (3, 3, 0)
    items = {r.item_id: (r.title, r.tags) for r in out.items.collect()}
    assert items["661"] == ("James and the Giant Peach (1996)", ["animation", "children's", "musical"])
    assert items["2"][0] == 'Am\u00e9lie "Le fabuleux" (2001)'  # latin-1, quotes kept as text
    assert _reasons(out) == [("interactions", 4, "unknown item: 9999"),
                             ("interactions", 5, "weight is not a number: x")]
    assert sorted(r.user_id for r in out.users.collect()) == ["1", "2", "3"]  # the users the ratings name


def test_movielens_10m_and_20m_layouts(spark, tmp_path):
    ten = _folder(tmp_path, "ten", {"ratings.dat": "1::122::5::838985046\n1::185::4.5::838983525\n",
                                    "movies.dat": "122::Boomerang (1992)::Comedy|Romance\n"
                                                  "185::Net, The (1995)::Action|Crime\n"})
    out, files = _ingest(spark, "movielens-10m", ten)
    assert files[("interactions", "ratings.dat")] == (2, 2, 0)
    assert sorted(r.weight for r in out.interactions.collect()) == [4.5, 5.0]
    twenty = _folder(tmp_path, "twenty", {
        "ratings.csv": "userId,movieId,rating,timestamp\n1,2,3.5,1112486027\n1,29,3.5,1112484676\n",
        "movies.csv": 'movieId,title,genres\n2,Jumanji (1995),Adventure|Children\n'
                      '29,"City of Lost Children, The (1995)",Adventure|Drama\n',
        "tags.csv": "userId,movieId,tag,timestamp\n18,29,dark,1240597180\n"})
    out, files = _ingest(spark, "movielens-20m", twenty)
    assert files[("interactions", "ratings.csv")] == (2, 2, 0)
    assert {r.item_id: r.title for r in out.items.collect()}["29"] == "City of Lost Children, The (1995)"


@pytest.mark.parametrize("preset", ["filmtrust", "epinions"])
def test_space_separated_trust_datasets(spark, tmp_path, preset):
    ratings, trust = {"filmtrust": ("ratings.txt", "trust.txt"), "epinions": ("ratings_data.txt", "trust_data.txt")}[
        preset]
    (tmp_path / ratings).write_text("1 1 2\n1 2 4\n2 1 3.5\n3 3\n")
    (tmp_path / trust).write_text(" 2 1 1\n 1 2 1\n 4 2 1\n")  # Epinions' leading blank
    out, files = _ingest(spark, preset, tmp_path)
    assert files[("interactions", ratings)] == (4, 3, 1) and files[("edges", trust)] == (3, 3, 0)
    assert _reasons(out) == [("interactions", 4, "malformed line: expected at least 3 fields separated by "
                                                 "white space, got 2")]
    events = sorted((r.user_id, r.item_id, r.event) for r in out.interactions.collect())
    cut = {"filmtrust": 3, "epinions": 4}[preset]
    assert events == [("1", "1", "low_rating"), ("1", "2", "rating"),
                      ("2", "1", "rating" if 3.5 >= cut else "low_rating")]
    # 4: only in the trust file; 3: only on the malformed line, so not a user
    assert sorted(r.user_id for r in out.users.collect()) == ["1", "2", "4"]
    assert {str(r.ts) for r in out.interactions.collect()} == {
        {"filmtrust": "2013-01-01 00:00:00", "epinions": "2003-01-01 00:00:00"}[preset]}


def test_ciaodvd_and_ciao(spark, tmp_path):
    dvd = _folder(tmp_path, "dvd", {"movie-ratings.txt": "1,1,1,1,4,2012-03-10\n1,2,1,2,5,2012-03-11\n"
                                                         "2,1,1,3,3,2011-13-01\n",
                                    "trusts.txt": "1,2,1\n2,1,1\n"})
    out, files = _ingest(spark, "ciaodvd", dvd)
    assert files[("interactions", "movie-ratings.txt")] == (3, 2, 1)
    assert _reasons(out) == [("interactions", 3, "unparseable timestamp as iso: 2011-13-01")]
    ciao = _folder(tmp_path, "ciao", {"rating.txt": "1 10 3 5 4\n2 10 3 2 4\n", "trustnetwork.txt": "1 2\n"})
    out, files = _ingest(spark, "ciao", ciao)
    assert sorted((r.user_id, r.event, r.weight) for r in out.interactions.collect()) == [
        ("1", "rating", 5.0), ("2", "low_rating", 2.0)]


def test_amazon_reviews_with_and_without_metadata(spark, tmp_path):
    reviews = [{"reviewerID": "A1", "asin": "B1", "overall": 5.0, "unixReviewTime": 1400000000,
                "summary": "Great kettle", "reviewText": "Boils fast."},
               {"reviewerID": "A2", "asin": "B1", "overall": 2.0, "unixReviewTime": 1400000500,
                "summary": "Leaks", "reviewText": "It leaked after a week."},
               {"reviewerID": "A2", "asin": "B2", "overall": 4.0, "unixReviewTime": 1400000900, "summary": "Nice mug"}]
    path = tmp_path / "Kitchen_5.json"
    path.write_text("\n".join(json.dumps(r) for r in reviews) + "\n")
    out, files = _ingest(spark, "amazon-reviews", path)
    assert files[("interactions", "Kitchen_5.json")] == (3, 3, 0)
    items = {r.item_id: (r.title, r.text) for r in out.items.collect()}
    assert items == {"B1": ("Great kettle", "Great kettle. Boils fast. Leaks. It leaked after a week."),
                     "B2": ("Nice mug", "Nice mug")}
    assert sorted((r.user_id, r.item_id, r.event) for r in out.interactions.collect()) == [
        ("A1", "B1", "rating"), ("A2", "B1", "low_rating"), ("A2", "B2", "rating")]
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"asin": "B1", "title": "Steel kettle", "description": ["1.7 l", "steel"]}) + "\n"
                    + json.dumps({"asin": "B2", "title": "Mug"}) + "\n")
    items_conf = json.dumps({"path": str(meta), "format": "json",
                             "columns": {"item_id": "asin", "title": "title", "text": "description"}})
    out, _ = _ingest(spark, "amazon-reviews", path, f"dataset.files={{items: {items_conf}}}")
    assert {r.item_id: (r.title, r.text) for r in out.items.collect()} == {"B1": ("Steel kettle", "1.7 l steel"),
                                                                           "B2": ("Mug", None)}


def test_mind_news_and_behaviors(spark, tmp_path):
    (tmp_path / "news.tsv").write_text(
        "N1\tsports\tfootball\tA match\tIt was close.\thttp://x\t[]\t[]\n"
        "N2\tnews\tworld\tA summit\t\thttp://y\t[]\t[]\n"
        "N3\tlifestyle\tfood\tA recipe\tSoup.\thttp://z\t[]\t[]\n")
    (tmp_path / "behaviors.tsv").write_text(
        "1\tU1\t11/11/2019 9:05:58 AM\tN1 N2\tN3-1 N1-0\n"
        "2\tU1\t11/12/2019 1:00:00 PM\tN1 N2\tN2-1\n"
        "3\tU2\t11/13/2019 8:00:00 AM\t\tN3-0 N9-1 N3\n")
    out, files = _ingest(spark, "mind", tmp_path)
    got = sorted((r.user_id, r.item_id, r.event, str(r.ts)) for r in out.interactions.collect())
    assert got == [("U1", "N1", "history", "2019-11-11 09:05:58"), ("U1", "N2", "click", "2019-11-12 13:00:00"),
                   ("U1", "N2", "history", "2019-11-11 09:05:58"), ("U1", "N3", "click", "2019-11-11 09:05:58")]
    # row = line x 100,000 + the entry's position (impressions from 1, history from 50,000)
    assert _reasons(out) == [("interactions", 300_002, "unknown item: N9"),
                             ("interactions", 300_003, "impression is not <news id>-1 or -0: N3")]
    assert {r.item_id: r.tags for r in out.items.collect()}["N2"] == ["news", "world"]


def test_files_adapter_reads_the_real_movielens_100k(spark):
    """u.data is a header-less tab-separated ratings file: the files adapter alone (no
    users or items file) gives the counts the GroupLens README states."""
    root = SHARED_DATA / "movielens-100k"
    if not (root / "u.data").is_file():
        pytest.skip(f"{root} not present")
    files = {"interactions": {"path": "u.data", "options": {"header": "false", "sep": "\t"},
                              "timestamp": "unix-seconds", "constants": {"event": "rating"},
                              "columns": {"user_id": 0, "item_id": 1, "weight": 2, "ts": 3}}}
    cfg = load_config([CONF_DIR / "base.yaml"], ["dataset.name=ml100k-files", "dataset.adapter=files",
                                                  f"dataset.path={root}", f"dataset.files={json.dumps(files)}",
                                                  "dataset.event_weights={rating: 1.0}"])
    out = validate_dataset(load_raw(spark, cfg.dataset), cfg.dataset)
    assert (out.interactions.count(), out.users.count(), out.items.count()) == (100_000, 943, 1_682)
    assert out.rejects.count() == 0
