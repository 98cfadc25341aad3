"""``python -m socialrec``: the same entry point as the ``socialrec`` console script."""

import sys

from socialrec.cli import main

sys.exit(main())
