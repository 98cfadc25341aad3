"""One step of the cross-line Delta check, run by either Spark line's interpreter
(``python -m tests.cross_line ROOT STEP``): merge the step's rows into the ``tokens``
table under ROOT and print the table as JSON. tests/test_cross_line.py runs the steps
alternately on the two lines, so each line reads and merges what the other wrote."""

from __future__ import annotations

import json
import sys

from socialrec.core.config import CONF_DIR, load_config
from socialrec.core.jars import spark_line
from socialrec.core.schemas import TABLES
from socialrec.core.session import get_spark
from socialrec.core.storage import Storage


def rows(step: int, line: str) -> list[tuple]:
    """Step 1 writes items a and b; step 2 rewrites b and adds c; step 3 rewrites a."""
    new = {1: [("a", ["one", "two"]), ("b", ["three"])], 2: [("b", ["three", "changed"]), ("c", ["四", "five"])],
           3: [("a", ["one", "again"])]}[step]
    return [("cross", item, f"spark-{line}", toks, len(toks)) for item, toks in new]


def main(root: str, step: int) -> None:
    cfg = load_config([CONF_DIR / "base.yaml", CONF_DIR / "env" / "test.yaml"], ["spark.progress=false"])
    spark = get_spark(cfg.spark, cfg.jars)
    line = spark_line()
    storage = Storage(root)
    storage.merge(spark.createDataFrame(rows(step, line), TABLES["tokens"].schema), "tokens")
    table = sorted([r.item_id, r.engine, list(r.tokens)] for r in storage.read(spark, "tokens").collect())
    print("CROSS-LINE " + json.dumps({"line": line, "spark": spark.version, "rows": table}, ensure_ascii=False))
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
