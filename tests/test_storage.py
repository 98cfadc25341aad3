"""Delta I/O: tables created from declared schemas, NOT NULL enforced, MERGE idempotent,
scoped syncs delete what disappeared."""

from __future__ import annotations

from datetime import datetime

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from socialrec.core.schemas import EDGES, INTERACTIONS, USERS, conform

T = datetime(2026, 3, 1)


def _ia(spark, rows):
    return spark.createDataFrame(rows, "dataset string, user_id string, item_id string, event string, weight double, ts timestamp").withColumn("detail", F.lit(None).cast("string"))


def _rows(df):
    return sorted(tuple(r) for r in df.drop("detail").collect())


def test_table_is_created_with_declared_schema(spark, storage):
    df = storage.read(spark, INTERACTIONS)
    assert df.count() == 0
    assert [(f.name, f.dataType, f.nullable) for f in df.schema] == [
        (f.name, f.dataType, f.nullable) for f in INTERACTIONS.schema
    ]
    assert DeltaTable.isDeltaTable(spark, storage.location(INTERACTIONS))
    detail = DeltaTable.forPath(spark, storage.location(INTERACTIONS)).detail().first()
    assert detail.partitionColumns == ["dataset"]


def test_merge_twice_leaves_the_same_rows(spark, storage):
    rows = [("d", "u1", "p1", "view", 1.0, T), ("d", "u2", "p1", "like", 2.0, T)]
    storage.merge(_ia(spark, rows), INTERACTIONS, scope={"dataset": "d"})
    first = _rows(storage.read(spark, INTERACTIONS))
    version = DeltaTable.forPath(spark, storage.location(INTERACTIONS)).history(1).first().version
    storage.merge(_ia(spark, rows), INTERACTIONS, scope={"dataset": "d"})
    assert _rows(storage.read(spark, INTERACTIONS)) == first
    assert len(first) == 2
    # The second MERGE had nothing to change: nothing was committed.
    assert DeltaTable.forPath(spark, storage.location(INTERACTIONS)).history(1).first().version == version


def test_merge_updates_inserts_and_scoped_delete(spark, storage):
    storage.merge(_ia(spark, [("d", "u1", "p1", "view", 1.0, T), ("d", "u2", "p1", "view", 1.0, T),
                              ("d", "u4", "p4", "view", 1.0, T), ("other", "u9", "p9", "view", 1.0, T)]),
                  INTERACTIONS)
    # Sync dataset d: u1's weight changes, u2 disappears, u3 arrives, u4 stays as it was;
    # "other" is untouched.
    storage.merge(_ia(spark, [("d", "u1", "p1", "view", 5.0, T), ("d", "u3", "p2", "view", 1.0, T),
                              ("d", "u4", "p4", "view", 1.0, T)]), INTERACTIONS, scope={"dataset": "d"})
    assert _rows(storage.read(spark, INTERACTIONS)) == [
        ("d", "u1", "p1", "view", 5.0, T),
        ("d", "u3", "p2", "view", 1.0, T),
        ("d", "u4", "p4", "view", 1.0, T),
        ("other", "u9", "p9", "view", 1.0, T),
    ]
    # Without vanished keys only the new and changed rows go into the MERGE: u4 is kept.
    storage.merge(_ia(spark, [("d", "u1", "p1", "view", 6.0, T), ("d", "u3", "p2", "view", 1.0, T),
                              ("d", "u4", "p4", "view", 1.0, T), ("d", "u5", "p5", "view", 1.0, T)]),
                  INTERACTIONS, scope={"dataset": "d"})
    assert [r[1:5] for r in _rows(storage.read(spark, INTERACTIONS, dataset="d"))] == [
        ("u1", "p1", "view", 6.0), ("u3", "p2", "view", 1.0), ("u4", "p4", "view", 1.0), ("u5", "p5", "view", 1.0)]
    last = DeltaTable.forPath(spark, storage.location(INTERACTIONS)).history(1).first().operationMetrics
    assert (last["numTargetRowsUpdated"], last["numTargetRowsInserted"], last["numTargetRowsDeleted"]) == ("1", "1", "0")
    assert _rows(storage.read(spark, INTERACTIONS, dataset="other")) == [("other", "u9", "p9", "view", 1.0, T)]


def test_a_first_write_to_an_empty_slice_is_one_append(spark, storage):
    """Nothing in the slice to match: the rows go in by one append (WRITE) commit, not a
    MERGE; other slices are untouched and a repeat is a MERGE that commits nothing."""
    storage.merge(_ia(spark, [("other", "u9", "p9", "view", 1.0, T)]), INTERACTIONS, scope={"dataset": "other"})
    rows = [("d", "u1", "p1", "view", 1.0, T), ("d", "u2", "p1", "like", 2.0, T)]
    storage.merge(_ia(spark, rows), INTERACTIONS, scope={"dataset": "d"})
    history = DeltaTable.forPath(spark, storage.location(INTERACTIONS)).history()
    ops = [r.operation for r in history.orderBy("version").collect()]
    assert ops == ["CREATE TABLE", "WRITE", "WRITE"]
    assert _rows(storage.read(spark, INTERACTIONS, dataset="d")) == sorted(rows)
    assert _rows(storage.read(spark, INTERACTIONS, dataset="other")) == [("other", "u9", "p9", "view", 1.0, T)]
    storage.merge(_ia(spark, rows), INTERACTIONS, scope={"dataset": "d"})
    assert DeltaTable.forPath(spark, storage.location(INTERACTIONS)).history(1).first().version == 2


def test_not_null_columns_are_enforced(spark, storage):
    bad = spark.createDataFrame([("d", None, "x", "follow", 1.0, None)],
                                "dataset string, src string, dst string, kind string, weight double, ts timestamp")
    with pytest.raises(Exception, match="(?i)null"):
        storage.merge(bad, EDGES)
    assert storage.read(spark, EDGES).count() == 0


def test_conform_projects_and_casts(spark):
    df = spark.createDataFrame([("1", "d", "extra")], "user_id string, dataset string, junk string")
    out = conform(df, USERS)
    assert out.columns == USERS.columns
    assert out.first().asDict() == {"dataset": "d", "user_id": "1", "name": None, "profile_text": None,
                                    "created_at": None}


def test_unknown_table_is_an_error(storage):
    with pytest.raises(KeyError, match="unknown table 'userz'"):
        storage.location("userz")


def test_float_noise_is_not_a_change(spark, storage):
    from socialrec.core.schemas import ITEM_W2V

    def vecs(v):
        return spark.createDataFrame([("d", "spark", "mean", "i1", v)],
                                     "dataset string, engine string, variant string, item_id string, vector array<float>")

    def version():
        return DeltaTable.forPath(spark, storage.location(ITEM_W2V)).history(1).first().version

    storage.merge(vecs([0.5, 0.25]), ITEM_W2V, scope={"dataset": "d"})
    first = version()
    storage.merge(vecs([0.5000001, 0.25]), ITEM_W2V, scope={"dataset": "d"})  # float32 rounding noise
    assert version() == first  # not a change: nothing committed
    storage.merge(vecs([0.6, 0.25]), ITEM_W2V, scope={"dataset": "d"})  # a real change
    assert storage.read(spark, ITEM_W2V).first().vector == pytest.approx([0.6, 0.25])


def test_metastore_tables_are_written_by_the_same_code_as_paths(spark, tmp_path):
    """storage.catalog switches every table to <catalog.schema>.<table> in the metastore
    (created with the declared schema, NOT NULL and partitioning); reads and MERGEs are
    the same calls, and give the same rows as the path-based tables."""
    from socialrec.core.storage import Storage

    rows = [("d", "u1", "p1", "view", 1.0, T), ("d", "u2", "p1", "like", 2.0, T)]
    by_path = Storage(root=str(tmp_path / "wh"))
    by_name = Storage(root=str(tmp_path / "wh"), catalog="spark_catalog.socialrec_dest")
    assert by_name.location(INTERACTIONS) == "spark_catalog.socialrec_dest.interactions"
    for st in (by_path, by_name):
        st.merge(_ia(spark, rows), INTERACTIONS, scope={"dataset": "d"})
        st.merge(_ia(spark, rows), INTERACTIONS, scope={"dataset": "d"})  # idempotent in both
    assert _rows(by_name.read(spark, INTERACTIONS)) == _rows(by_path.read(spark, INTERACTIONS)) == sorted(rows)
    assert spark.catalog.tableExists("spark_catalog.socialrec_dest.interactions")
    detail = spark.sql("DESCRIBE DETAIL spark_catalog.socialrec_dest.interactions").first()
    assert detail.format == "delta" and detail.partitionColumns == ["dataset"]
    declared = [(f.name, f.dataType, f.nullable) for f in INTERACTIONS.schema]
    assert [(f.name, f.dataType, f.nullable) for f in by_name.read(spark, INTERACTIONS).schema] == declared
    # the path-based table is not a metastore table, and the named one is not under root
    assert (tmp_path / "wh" / "interactions" / "_delta_log").is_dir()
    assert "socialrec_dest" in detail.location and str(tmp_path / "wh") not in detail.location
    # NOT NULL is enforced in the metastore table as in the path one
    bad = spark.createDataFrame([("d", None, "x", "follow", 1.0, None)],
                                "dataset string, src string, dst string, kind string, weight double, ts timestamp")
    with pytest.raises(Exception, match="(?i)null"):
        by_name.merge(bad, EDGES)
    # a one-part name is a schema in the session's current catalog
    assert Storage(catalog="socialrec_one").location(USERS) == "socialrec_one.users"


@pytest.mark.parametrize("name", ["x; DROP TABLE y", "a.b.c", "`a`.b", "1abc", ""])
def test_catalog_names_are_plain_identifiers(name):
    from socialrec.core.storage import Storage

    with pytest.raises(ValueError, match="plain identifiers"):
        Storage(catalog=name)


def test_add_counts_once_per_transaction_and_apply_upserts_and_deletes(spark, storage):
    """``Storage.add`` (the stream's trending sums) skips a commit whose (app id, version)
    the table has recorded; ``Storage.apply`` upserts and deletes in one MERGE."""
    from socialrec.core.schemas import FRESH_RECOMMENDATIONS, TRENDING

    b = spark.createDataFrame([("d", "i1", T, 2, 3.0, T)],
                              "dataset string, item_id string, bucket_start timestamp, events long, weight double, "
                              "updated_at timestamp")
    storage.add(b, TRENDING, sums=("events", "weight"), txn=("app-1", 0))
    storage.add(b, TRENDING, sums=("events", "weight"), txn=("app-1", 0))  # a replay: skipped
    assert [(r.events, r.weight) for r in storage.read(spark, TRENDING).collect()] == [(2, 3.0)]
    storage.add(b, TRENDING, sums=("events", "weight"), txn=("app-1", 1))
    assert [(r.events, r.weight) for r in storage.read(spark, TRENDING).collect()] == [(4, 6.0)]
    assert spark.conf.get("spark.databricks.delta.write.txnAppId", None) is None  # not left set for other writes

    cols = "dataset string, user_id string, item_id string, score double, reason string, arrived_at timestamp, " \
           "scored_at timestamp, _op string"
    storage.apply(spark.createDataFrame([("d", "u", "a", 0.5, "r", T, T, "upsert"), ("d", "u", "b", 0.4, "r", T, T, "upsert")],
                                        cols), FRESH_RECOMMENDATIONS, changed="abs(t.score - s.score) > 1e-6")
    storage.apply(spark.createDataFrame([("d", "u", "a", 0.9, "r", T, datetime(2026, 3, 2), "upsert"),
                                         ("d", "u", "b", 0.0, "r", T, T, "delete"),
                                         ("d", "u", "c", 0.1, "r", T, T, "delete")], cols), FRESH_RECOMMENDATIONS,
                  changed="abs(t.score - s.score) > 1e-6")
    assert [(r.item_id, r.score, r.scored_at) for r in storage.read(spark, FRESH_RECOMMENDATIONS).collect()] == [
        ("a", 0.9, datetime(2026, 3, 2))]
