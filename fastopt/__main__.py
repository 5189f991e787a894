"""`python -m fastopt` is the same as the `fastopt` console script."""
import sys

from fastopt.cli import main

sys.exit(main())
