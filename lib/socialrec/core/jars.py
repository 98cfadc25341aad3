"""The Spark jars socialrec needs, and fetching them once into a local cache.

Run ``python -m socialrec.core.jars fetch`` (``make setup`` does) to copy the jars from
Maven Central into ``$SOCIALREC_CACHE/jars`` with ``mvn dependency:copy`` (strict
checksums). Sessions then pass the files as ``spark.jars``, so no run depends on
reaching a repository. Clusters that reach a repository may use ``jars.mode: packages``
(``spark.jars.packages``) instead, and platforms that provide the jars ``jars.mode: none``.

Each supported Spark line (``LINES``: 4.1, the default, and 3.5) has its own jar set,
chosen by the pyspark that runs (``spark_line``). Only the jars that the code uses are
fetched, without their transitive dependencies: delta-spark needs delta-storage and
nothing else at run time (the delta-kernel and Unity Catalog client jars that its 4.4
POM also lists, with their own Jackson, Hadoop client and Parquet copies, are for Unity
Catalog managed tables and would shadow Spark's own versions). Spark NLP's POM names
TensorFlow, llama.cpp and OpenVINO jars that Maven Central does not serve; its rule-based
annotators need only the AWS SDK core beside it (else ``NoClassDefFoundError:
com/amazonaws/AmazonServiceException`` on the first annotator).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JarSet:
    """One Spark line's jars: Delta and the readers' (required), and Spark NLP
    (``nlp_required``: whether setup fails when Maven Central does not serve it)."""

    delta: tuple[str, ...]
    spark_nlp: tuple[str, ...]
    nlp_required: bool
    readers: tuple[str, ...] = ()  # data sources Spark itself lacks on the line

    @property
    def required(self) -> tuple[str, ...]:
        return self.delta + self.readers


LINES = {
    # Spark 4.1 / Scala 2.13: Spark NLP has no Scala 2.13 jar on Maven Central (7.0.0 is
    # tried once and recorded as unavailable); the spark-ml engine tokenises.
    "4.1": JarSet(delta=("io.delta:delta-spark_4.1_2.13:4.4.0", "io.delta:delta-storage:4.4.0"),
                  spark_nlp=("com.johnsnowlabs.nlp:spark-nlp_2.13:7.0.0",), nlp_required=False),
    # Spark 3.5 / Scala 2.12: where Spark NLP is served (requirements-spark3.5.txt).
    # Spark 3.5 has no XML source (Spark 4's was ported from spark-xml, which registers the
    # same "xml" name and options), so the Stack Exchange reader is the same code on both.
    "3.5": JarSet(delta=("io.delta:delta-spark_2.12:3.3.3", "io.delta:delta-storage:3.3.3"),
                  spark_nlp=("com.johnsnowlabs.nlp:spark-nlp_2.12:5.5.3", "com.amazonaws:aws-java-sdk-core:1.12.500"),
                  nlp_required=True, readers=("com.databricks:spark-xml_2.12:0.18.0",)),
}


def spark_line(version: str | None = None) -> str:
    """The supported line (``LINES``) of pyspark ``version`` (default: the installed one)."""
    if version is None:
        import pyspark

        version = pyspark.__version__
    line = ".".join(version.split(".")[:2])
    if line not in LINES:
        raise RuntimeError(f"pyspark {version}: supported Spark lines are {', '.join(sorted(LINES))} "
                           "(SPARK_LINE=3.5 make setup for the 3.5 line)")
    return line


def jar_set(line: str | None = None) -> JarSet:
    return LINES[line or spark_line()]

MAVEN_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"


def cache_dir(configured: str | None = None) -> Path:
    """The cache root: the configured one, else $SOCIALREC_CACHE, else ~/.cache/socialrec."""
    root = configured or os.environ.get("SOCIALREC_CACHE") or Path.home() / ".cache" / "socialrec"
    return Path(root).expanduser()


def jar_dir(configured: str | None = None) -> Path:
    return cache_dir(configured) / "jars"


def jar_file(coordinate: str, directory: Path) -> Path:
    """The file ``mvn dependency:copy`` writes for ``group:artifact:version``."""
    parts = coordinate.split(":")
    if len(parts) != 3:
        raise ValueError(f"jar coordinate {coordinate!r}: expected group:artifact:version")
    _, artifact, version = parts
    return directory / f"{artifact}-{version}.jar"


def unavailable_marker(coordinate: str, directory: Path) -> Path:
    return directory / (jar_file(coordinate, directory).name + ".unavailable")


def missing(coordinates, directory: Path) -> list[str]:
    return [c for c in coordinates if not jar_file(c, directory).exists()]


def fetch(coordinates, directory: Path, *, required: bool = True) -> list[Path]:
    """Copy each coordinate's jar into ``directory`` unless it is there already.

    A jar that Maven Central does not serve raises when ``required``; otherwise it is
    recorded in a ``.unavailable`` marker (so later setups do not ask again) and skipped.
    """
    directory.mkdir(parents=True, exist_ok=True)
    got = []
    for coordinate in coordinates:
        target = jar_file(coordinate, directory)
        marker = unavailable_marker(coordinate, directory)
        if target.exists():
            got.append(target)
            continue
        if marker.exists() and not required:
            log.info("jar %s: not served by Maven Central (recorded in %s); skipped", coordinate, marker)
            continue
        mvn = shutil.which("mvn")
        if mvn is None:
            raise RuntimeError("jar fetch: Maven (mvn) is not on PATH; install it or use jars.mode: packages")
        start = time.time()
        cmd = [
            mvn, "-q", "-B", "-C",
            f"{MAVEN_DEPENDENCY_PLUGIN}:copy",
            f"-Dartifact={coordinate}",
            f"-DoutputDirectory={directory}",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not target.exists():
            detail = _maven_error(proc.stdout + proc.stderr)
            if required:
                raise RuntimeError(f"jar fetch: {coordinate}: Maven could not copy it: {detail}")
            marker.write_text(detail + "\n", encoding="utf-8")
            print(f"jars: {coordinate}: not available from Maven Central ({detail}); skipped", flush=True)
            continue
        size = target.stat().st_size / 2**20
        print(f"jars: {coordinate}: {size:.1f} MiB in {time.time() - start:.1f} s", flush=True)
        got.append(target)
    return got


def _maven_error(output: str) -> str:
    for line in output.splitlines():
        if "ERROR" in line and ("not found" in line or "Could not" in line or "Couldn't" in line):
            text = line.split("ERROR", 1)[1]
            return "".join(ch for ch in text if ch.isprintable()).strip(" ]:[")[:300]
    return output.strip().splitlines()[-1][:300] if output.strip() else "no output"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m socialrec.core.jars", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["fetch", "list"])
    parser.add_argument("--dir", default=None, help="jar directory (default: $SOCIALREC_CACHE/jars)")
    parser.add_argument("--line", default=None, choices=sorted(LINES),
                        help="Spark line (default: the installed pyspark's)")
    args = parser.parse_args(argv)
    directory = Path(args.dir) if args.dir else jar_dir()
    jars = jar_set(args.line)
    if args.command == "list":
        for c in jars.required + jars.spark_nlp:
            f = jar_file(c, directory)
            state = "present" if f.exists() else ("unavailable" if unavailable_marker(c, directory).exists() else "missing")
            print(f"{c}\t{state}\t{f}")
        return 0
    try:
        fetch(jars.required, directory, required=True)
        fetch(jars.spark_nlp, directory, required=jars.nlp_required)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"jars: ready in {directory} (Spark {args.line or spark_line()} line)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
