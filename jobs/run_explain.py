"""spark-submit entry point for `socialrec explain`.

    spark-submit --py-files dist/socialrec-0.1.0-py3-none-any.whl \
        --jars $HOME/.cache/socialrec/jars/delta-spark_4.1_2.13-4.4.0.jar,$HOME/.cache/socialrec/jars/delta-storage-4.4.0.jar \
        jobs/run_explain.py --env cluster --set storage.root=/data/socialrec

Arguments are those of `socialrec explain` (--conf, --set, --env, --run-id). The file is
named run_<stage>.py, not <stage>.py: spark-submit puts this folder first on the
driver's sys.path, where a tokenize.py would shadow Python's own tokenize module.
"""

import sys

from socialrec.cli import main

if __name__ == "__main__":
    sys.exit(main(["explain", *sys.argv[1:]]))
