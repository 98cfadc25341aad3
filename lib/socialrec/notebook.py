"""The notebooks' side of the library, and a runner for Databricks source notebooks.

The notebooks in ``notebooks/`` are Databricks source files (``# Databricks notebook
source`` first, cells separated by ``# COMMAND ----------``, markdown as ``# MAGIC %md``).
Each starts with ``nb = notebook.context(globals(), DEFAULTS)``:

* on Databricks (``dbutils`` in the notebook's globals) it declares one text widget per
  default and reads the values from the widgets, and ``nb.show`` / ``nb.figure`` use
  the platform's ``display``;
* anywhere else the defaults apply, overridden by the JSON object in
  ``$SOCIALREC_NOTEBOOK_PARAMS`` (what the runner sets), tables print as text and
  figures are saved as PNG files under ``$SOCIALREC_NOTEBOOK_OUT`` (default
  ``./notebook-output``).

``python -m socialrec.notebook notebooks/01_explore_data.py [more.py ...] --param
dataset=movielens-100k --param conf="als.tune=false"`` executes notebooks top to bottom
outside Databricks, each in a fresh namespace, one SparkSession for all of them; a
failing cell stops the run with the notebook, the cell number and the line. The test
suite runs every notebook this way (tests/test_notebooks.py).

Widgets understood by ``Notebook.config`` (each notebook declares those it uses; an
empty value leaves the conf layer's setting): ``env`` (conf layer when not on
Databricks), ``dataset``, ``storage_root`` (``./warehouse`` locally,
``/Volumes/main/socialrec/warehouse`` on Databricks), ``catalog`` (empty: paths),
``users`` (generated network size), ``models`` (comma separated), ``conf`` (more
``key=value`` overrides separated by ``;``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

PARAMS_ENV = "SOCIALREC_NOTEBOOK_PARAMS"
OUT_ENV = "SOCIALREC_NOTEBOOK_OUT"
HEADER = "# Databricks notebook source"
SEPARATOR = "# COMMAND ----------"
MAGIC = "# MAGIC"


class NotebookError(RuntimeError):
    """A notebook is malformed or one of its cells failed (the message says where)."""


@dataclass
class Notebook:
    """What a notebook cell needs from its surroundings: parameters and display."""

    params: dict[str, str]
    on_databricks: bool = False
    display_fn: Callable | None = None
    out_dir: Path = field(default_factory=lambda: Path(os.environ.get(OUT_ENV, "notebook-output")))

    def config(self, *extra: str):
        """The run's Config: conf layers for the environment, then the widgets, then
        ``extra`` overrides (``key=value``)."""
        from socialrec.core.config import load_config

        p = self.params
        env = "databricks" if self.on_databricks else (p.get("env") or "local")
        overrides: list[str] = []
        if p.get("dataset"):
            overrides.append(f"dataset.name={p['dataset']}")
        if p.get("storage_root"):
            overrides.append(f"storage.root={p['storage_root']}")
        if p.get("catalog"):
            overrides.append(f"storage.catalog={p['catalog']}")
        if p.get("users") and p.get("dataset", "synthetic") == "synthetic":
            users = int(p["users"])
            overrides += [f"dataset.synthetic.users={users}", f"dataset.synthetic.posts={users * 3}"]
        if p.get("models"):
            overrides.append("evaluation.models=[" + ",".join(m.strip() for m in p["models"].split(",")) + "]")
        if p.get("conf"):
            overrides += [kv.strip() for kv in p["conf"].split(";") if kv.strip()]
        return load_config(env=env, overrides=[*overrides, *extra])

    def show(self, df, n: int = 20) -> None:
        """A Spark or pandas DataFrame: Databricks' table view, else printed."""
        if self.display_fn is not None:
            self.display_fn(df.limit(n) if hasattr(df, "limit") else df.head(n) if hasattr(df, "head") else df)
        elif hasattr(df, "show"):
            df.show(n, truncate=False)
        else:
            import pandas as pd

            with pd.option_context("display.width", 200, "display.max_columns", 30):
                print(df.head(n).to_string())

    def figure(self, fig, name: str) -> Path | None:
        """A matplotlib figure: displayed on Databricks, else saved as ``<out>/<name>.png``."""
        import matplotlib.pyplot as plt

        path = None
        if self.display_fn is not None:
            self.display_fn(fig)
        else:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            path = self.out_dir / f"{name}.png"
            fig.savefig(path, dpi=100, bbox_inches="tight")
            print(f"figure: {path}")
        plt.close(fig)
        return path


def context(namespace: dict[str, Any], defaults: dict[str, str]) -> Notebook:
    """The notebook's parameters: widgets on Databricks, else defaults overridden by
    ``$SOCIALREC_NOTEBOOK_PARAMS`` (keys a notebook does not declare are ignored)."""
    dbutils = namespace.get("dbutils")
    if dbutils is not None:
        for key, value in defaults.items():
            dbutils.widgets.text(key, str(value))
        params = {key: dbutils.widgets.get(key) for key in defaults}
        return Notebook(params, on_databricks=True, display_fn=namespace.get("display"))
    params = {key: str(value) for key, value in defaults.items()}
    given = json.loads(os.environ.get(PARAMS_ENV) or "{}")
    params.update({k: str(v) for k, v in given.items() if k in defaults})
    if "matplotlib" not in sys.modules:
        import matplotlib

        matplotlib.use("Agg")  # no display here: figures are written to files
    return Notebook(params)


# --------------------------------------------------------------------------- the runner


@dataclass
class Cell:
    number: int  # 1-based, as Databricks shows them
    line: int  # first line of the cell in the file
    source: str
    magic: str | None  # "md", "sql", ... for # MAGIC cells, else None


def cells(path: str | Path) -> list[Cell]:
    """Split a Databricks source notebook into its cells."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].strip() != HEADER:
        raise NotebookError(f"{path}: not a Databricks source notebook (first line must be {HEADER!r})")
    out: list[Cell] = []
    start, buf = 2, []
    for i, text in enumerate(lines[1:] + [SEPARATOR], start=2):
        if text.strip() == SEPARATOR:
            body = "\n".join(buf)
            if body.strip():
                code = [ln for ln in buf if ln.strip()]
                magic = None
                if all(ln.startswith(MAGIC) for ln in code):
                    first = code[0][len(MAGIC):].strip()
                    magic = first[1:].split()[0] if first.startswith("%") else "md"
                out.append(Cell(len(out) + 1, start, body, magic))
            start, buf = i + 1, []
        else:
            buf.append(text)
    return out


def run(path: str | Path, params: dict[str, str] | None = None) -> list[float]:
    """Execute a notebook top to bottom in a fresh namespace; returns each cell's seconds.
    Markdown cells are skipped; other magics (``%pip``, ``%sql``, ``%run``) are refused,
    since they would not run here as they do on Databricks."""
    path = Path(path)
    saved = os.environ.get(PARAMS_ENV)
    os.environ[PARAMS_ENV] = json.dumps(params or {})
    namespace: dict[str, Any] = {"__name__": "__main__", "__file__": str(path)}
    timings = []
    try:
        for cell in cells(path):
            if cell.magic == "md":
                continue
            if cell.magic is not None:
                raise NotebookError(f"{path} cell {cell.number} (line {cell.line}): magic %{cell.magic} "
                                    "only runs on Databricks")
            start = time.perf_counter()
            code = compile("\n" * (cell.line - 1) + cell.source, str(path), "exec")  # tracebacks show file lines
            try:
                exec(code, namespace)
            except Exception as exc:
                raise NotebookError(f"{path} cell {cell.number} (line {cell.line}): "
                                    f"{type(exc).__name__}: {exc}") from exc
            timings.append(time.perf_counter() - start)
            log.info("%s cell %d: %.1f s", path.name, cell.number, timings[-1])
    finally:
        if saved is None:
            os.environ.pop(PARAMS_ENV, None)
        else:
            os.environ[PARAMS_ENV] = saved
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m socialrec.notebook",
                                     description="Run Databricks source notebooks top to bottom, locally.")
    parser.add_argument("notebooks", nargs="+", help="notebook files, run in the order given")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a widget value (repeatable); widgets a notebook does not declare are ignored")
    parser.add_argument("--out", default=None, help=f"folder for figures (default ${OUT_ENV} or ./notebook-output)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    params = {}
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"--param {item!r}: expected NAME=VALUE")
        params[name] = value
    if args.out:
        os.environ[OUT_ENV] = args.out
    for nb in args.notebooks:
        start = time.perf_counter()
        try:
            spent = run(nb, params)
        except NotebookError as exc:
            if exc.__cause__ is not None:
                traceback.print_exception(exc.__cause__)
            print(f"notebook: {exc}", file=sys.stderr)
            return 1
        print(f"notebook {nb}: {len(spent)} cells in {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
