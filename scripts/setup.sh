#!/usr/bin/env bash
# Prepare everything socialrec needs on a fresh machine, idempotently and fast when warm:
#  1. a virtualenv keyed by the hash of the line's requirements file, under
#     $SOCIALREC_CACHE (default ~/.cache/socialrec), linked as ./.venv — a warm rerun
#     costs nothing;
#  2. the Spark jars of the line (Delta; Spark NLP where Maven Central serves it) copied
#     by Maven into $SOCIALREC_CACHE/jars, once; later runs never contact a repository.
# SPARK_LINE picks the Spark line: 4.1 (default; requirements.txt, ./.venv) or 3.5
# (requirements-spark3.5.txt, ./.venv-3.5, where Spark NLP runs).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${SOCIALREC_CACHE:-$HOME/.cache/socialrec}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$CACHE"

LINE="${SPARK_LINE:-4.1}"
case "$LINE" in
  4.1) requirements=requirements.txt; link=.venv ;;
  3.5) requirements=requirements-spark3.5.txt; link=.venv-3.5 ;;
  *) echo "setup: SPARK_LINE=$LINE: the supported Spark lines are 4.1 (the default) and 3.5" >&2; exit 2 ;;
esac

hash=$(sha256sum "$requirements" | cut -c1-16)
venv="$CACHE/venv-$hash"
if [ ! -f "$venv/.socialrec-complete" ]; then
  echo "setup: creating virtualenv $venv for Spark $LINE (first time: downloads ~3 GB, takes a few minutes)"
  start=$(date +%s)
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade "pip>=24"
  "$venv/bin/pip" install --quiet -r "$requirements"
  touch "$venv/.socialrec-complete"
  echo "setup: virtualenv ready in $(( $(date +%s) - start )) s"
else
  echo "setup: virtualenv $venv is up to date"
fi
ln -sfn "$venv" "$link"

# Jars: the library knows each line's coordinates; Maven copies them into the cache.
PYTHONPATH=lib SOCIALREC_CACHE="$CACHE" "$link/bin/python" -m socialrec.core.jars fetch --line "$LINE"
