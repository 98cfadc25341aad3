"""The wheel carries the library, the jobs and the default conf, and the conf is found
when the package is imported from the wheel itself (spark-submit --py-files)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

from .conftest import ROOT


def test_wheel_contents_and_zip_import(tmp_path):
    out = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(out), str(ROOT)], check=True, capture_output=True, cwd=tmp_path, timeout=300)
    (wheel,) = out.glob("socialrec-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"socialrec/cli.py", "socialrec/conf/base.yaml", "socialrec/conf/env/cluster.yaml",
            "socialrec/conf/datasets/synthetic.yaml", "socialrec_jobs/run_pipeline.py",
            "socialrec/standalone.py", "socialrec/notebook.py"} <= names
    lib = ROOT / "lib"
    modules = {p.relative_to(lib).as_posix() for p in (lib / "socialrec").rglob("*.py")}
    assert modules - names == set()  # every module of the library, new subpackages included
    entry = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "socialrec = socialrec.cli:main" in entry
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import socialrec.core.config as c; "
            "cfg = c.load_config(env='cluster'); print(c.__file__.startswith(sys.argv[1]), cfg.spark.master, "
            "cfg.jars.mode, cfg.spark.shuffle_partitions)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", code, str(wheel)], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "None", "none", "200"]


def test_job_files_shadow_no_module():
    """spark-submit puts jobs/ first on the driver's sys.path: a job named like a module
    that Python, pyspark or a dependency imports (tokenize.py did) breaks the driver."""
    import importlib.util

    jobs = sorted((ROOT / "jobs").glob("*.py"))
    names = [p.stem for p in jobs]
    assert {"run_pipeline", "run_stream", "run_explain"} <= set(names) and len(names) == 12
    for name in names:
        assert name not in sys.stdlib_module_names, name
        assert importlib.util.find_spec(name) is None, f"jobs/{name}.py shadows an importable module"
        text = (ROOT / "jobs" / f"{name}.py").read_text()
        assert "from socialrec.cli import main" in text


# The layers of lib/socialrec, lowest first: a module imports its own layer and those
# below it (docs/design.md). Entry points sit on top.
LAYERS = (("core",), ("data",), ("features",), ("evaluation",), ("models",), ("explain", "stream"), ("stages",),
          ("pipeline",), ("cli", "notebook", "standalone", "__main__"))


def _runtime_imports() -> dict[str, set[str]]:
    """Module -> the socialrec modules it imports at run time (module level and inside
    functions; ``if TYPE_CHECKING:`` blocks left out)."""
    import ast

    lib = ROOT / "lib"
    out: dict[str, set[str]] = {}
    for path in sorted((lib / "socialrec").rglob("*.py")):
        parts = list(path.relative_to(lib).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                       and getattr(node.test, "id", "") == "TYPE_CHECKING" for n in ast.walk(node)}
        found = out.setdefault(name, set())
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("socialrec"):
                found.update(f"{node.module}.{a.name}" if node.module == "socialrec" else node.module
                             for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("socialrec"))
    return out


def test_imports_flow_down_the_layers_without_cycles():
    imports = _runtime_imports()
    layer = {name: i for i, names in enumerate(LAYERS) for name in names}

    def layer_of(module: str) -> int | None:
        parts = module.split(".")
        return layer.get(parts[1]) if len(parts) > 1 else None  # the package root: its version only

    assert set(layer) >= {m.split(".")[1] for m in imports if "." in m}, "a new subpackage needs a layer"
    upward = sorted(f"{m} -> {t}" for m, targets in imports.items() for t in targets
                    if layer_of(t) is not None and layer_of(t) > layer_of(m))
    assert upward == []
    # No cycle between modules: a depth-first search over the import edges.
    known = set(imports)
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(imports[m]):
            t = t if t in known else t.rsplit(".", 1)[0]  # `from pkg import name` of a function
            if t not in known or t == m:
                continue
            assert state.get(t) != 1, f"import cycle: {' -> '.join(path + [m, t])}"
            if t not in state:
                visit(t, path + [m])
        state[m] = 2

    for m in sorted(known):
        if m not in state:
            visit(m, [])
