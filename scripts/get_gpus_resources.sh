#!/usr/bin/env bash
# Spark GPU discovery script (spark.executor.resource.gpu.discoveryScript and
# spark.worker.resource.gpu.discoveryScript): prints the GPUs this node has, as Spark
# expects, e.g. {"name": "gpu", "addresses": ["0", "1"]}. Needs nvidia-smi.
set -euo pipefail
ids=$(nvidia-smi --query-gpu=index --format=csv,noheader | awk 'NF {printf "%s\"%s\"", (n++ ? ", " : ""), $1}')
echo "{\"name\": \"gpu\", \"addresses\": [${ids}]}"
