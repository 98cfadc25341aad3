"""Delta tables written by one supported Spark line are read and merged by the other
(4.1 with Delta 4.4, 3.5 with Delta 3.3): the same warehouse, three alternating
merges. Needs both lines' virtualenvs (`make setup` and `SPARK_LINE=3.5 make setup`;
CI's `make test-spark35` runs it with both in place)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from socialrec.core.jars import spark_line

from .conftest import ROOT

VENVS = {"4.1": ROOT / ".venv", "3.5": ROOT / ".venv-3.5"}


def _step(line: str, root, step: int) -> dict:
    python = str(VENVS[line] / "bin" / "python")
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'lib'}{os.pathsep}{ROOT}", "PYSPARK_PYTHON": python}
    out = subprocess.run([python, "-m", "tests.cross_line", str(root), str(step)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    line_out = [ln for ln in out.stdout.splitlines() if ln.startswith("CROSS-LINE ")]
    assert line_out, out.stdout[-2000:]
    return json.loads(line_out[-1].removeprefix("CROSS-LINE "))


def test_each_line_reads_and_merges_the_others_tables(tmp_path):
    here = spark_line()
    other = next(line for line in VENVS if line != here)
    if not (VENVS[other] / "bin" / "python").exists():
        pytest.skip(f"the Spark {other} line's virtualenv ({VENVS[other].name}) is not set up")
    root = tmp_path / "warehouse"
    first = _step(other, root, 1)
    assert first["line"] == other and first["rows"] == [["a", f"spark-{other}", ["one", "two"]],
                                                        ["b", f"spark-{other}", ["three"]]]
    second = _step(here, root, 2)
    assert second["line"] == here and second["rows"] == [["a", f"spark-{other}", ["one", "two"]],
                                                         ["b", f"spark-{here}", ["three", "changed"]],
                                                         ["c", f"spark-{here}", ["四", "five"]]]
    third = _step(other, root, 3)
    assert third["rows"] == [["a", f"spark-{other}", ["one", "again"]],
                             ["b", f"spark-{here}", ["three", "changed"]],
                             ["c", f"spark-{here}", ["四", "five"]]]
