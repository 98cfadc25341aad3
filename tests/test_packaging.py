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
