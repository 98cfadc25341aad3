#!/usr/bin/env bash
# Prepare everything socialrec needs on a fresh machine, idempotently and fast when warm:
#  1. a virtualenv keyed by the hash of requirements.txt, under $SOCIALREC_CACHE
#     (default ~/.cache/socialrec), linked as ./.venv — a warm rerun costs nothing;
#  2. the Spark jars (Delta; Spark NLP where Maven Central serves it) copied by Maven
#     into $SOCIALREC_CACHE/jars, once; later runs never contact a repository.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${SOCIALREC_CACHE:-$HOME/.cache/socialrec}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$CACHE"

hash=$(sha256sum requirements.txt | cut -c1-16)
venv="$CACHE/venv-$hash"
if [ ! -f "$venv/.socialrec-complete" ]; then
  echo "setup: creating virtualenv $venv (first time: downloads ~3 GB, takes a few minutes)"
  start=$(date +%s)
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade "pip>=24"
  "$venv/bin/pip" install --quiet -r requirements.txt
  touch "$venv/.socialrec-complete"
  echo "setup: virtualenv ready in $(( $(date +%s) - start )) s"
else
  echo "setup: virtualenv $venv is up to date"
fi
ln -sfn "$venv" .venv

# Jars: the library knows the coordinates; Maven copies them into the cache.
PYTHONPATH=lib SOCIALREC_CACHE="$CACHE" .venv/bin/python -m socialrec.core.jars fetch
